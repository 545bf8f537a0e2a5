import mongoose, { type Connection, type Model } from 'mongoose'

/** A chat message as stored and replayed: the client's bytes and headers, as sent. */
export interface ChatMessage {
  /** Time-ordered (`newMessageId`): the order of ids is the order of the room. */
  readonly id: string
  readonly roomId: string
  readonly senderId: string
  readonly body: Uint8Array
  /** The client's own SEND headers (minus destination, receipt and content-length), in order. */
  readonly headers: [string, string][]
  readonly sentAt: Date
  /**
   * Where the chat topic holds it (set once it came through Kafka): a resume tells by it what
   * storage had when it started from what arrives live after.
   */
  readonly position?: MessagePosition
}

/** A message's place on the chat topic. */
export interface MessagePosition {
  readonly partition: number
  readonly offset: bigint
}

/** The index every read of a room's messages is a range on. */
export const MESSAGE_INDEX_NAME = 'messages_by_room_and_id'
export const MESSAGE_COLLECTION = 'messages'

interface MessageDocument {
  id: string
  roomId: string
  senderId: string
  body: Buffer
  headers: { name: string; value: string }[]
  sentAt: Date
  partition?: number
  offset?: number
}

const messageSchema = new mongoose.Schema<MessageDocument>(
  {
    id: { type: String, required: true },
    roomId: { type: String, required: true },
    senderId: { type: String, required: true },
    body: { type: Buffer, required: true },
    // Pairs as subdocuments: FerretDB, the local MongoDB, stores no nested arrays.
    headers: { type: [new mongoose.Schema({ name: String, value: String }, { _id: false })], default: [] },
    sentAt: { type: Date, required: true },
    partition: { type: Number },
    offset: { type: Number },
  },
  // `id` is a stored field here, not mongoose's virtual copy of `_id`.
  { id: false, versionKey: false, collection: MESSAGE_COLLECTION },
)
// Unique, so storing a message twice (a redelivered event) keeps one copy.
messageSchema.index({ roomId: 1, id: 1 }, { unique: true, name: MESSAGE_INDEX_NAME })

const MODEL_NAME = 'ChatMessage'
const DUPLICATE_KEY = 11000

/** Messages in MongoDB, one collection, read only as ranges of (roomId, id). */
export class MessageStore {
  readonly #model: Model<MessageDocument>

  constructor(connection: Connection) {
    this.#model =
      (connection.models[MODEL_NAME] as Model<MessageDocument> | undefined) ??
      connection.model<MessageDocument>(MODEL_NAME, messageSchema)
  }

  /** Builds the index before the first read, rather than leaving it to happen in the background. */
  async ensureIndexes(): Promise<void> {
    await this.#model.createIndexes()
  }

  /** Stores the message; false when a message with its id was already stored in that room. */
  async save(message: ChatMessage): Promise<boolean> {
    try {
      await this.#model.collection.insertOne(toDocument(message))
      return true
    } catch (error) {
      if (isDuplicate(error)) return false
      throw error
    }
  }

  /** Stores many at once, skipping those already stored; answers how many were new. */
  async saveMany(messages: readonly ChatMessage[]): Promise<number> {
    if (messages.length === 0) return 0
    try {
      const result = await this.#model.collection.insertMany(messages.map(toDocument), { ordered: false })
      return result.insertedCount
    } catch (error) {
      const partial = error as { code?: number; writeErrors?: unknown; result?: { insertedCount?: number } }
      const errors = [partial.writeErrors ?? []].flat() as { code?: number }[]
      if (errors.length > 0 && errors.every((e) => e.code === DUPLICATE_KEY)) {
        return partial.result?.insertedCount ?? messages.length - errors.length
      }
      throw error
    }
  }

  /** Up to `limit` messages after `afterId`, oldest first: what a resuming subscriber missed. */
  async after(roomId: string, afterId: string, limit: number): Promise<ChatMessage[]> {
    const documents = await this.#model
      .find({ roomId, id: { $gt: afterId } })
      .sort({ roomId: 1, id: 1 })
      .limit(limit)
      .lean()
    return documents.map(toMessage)
  }

  /** One page of the room's history, newest first, before the message `before` when given. */
  async page(roomId: string, options: { before?: string | undefined; limit: number }): Promise<ChatMessage[]> {
    const documents = await this.#pageQuery(roomId, options).lean()
    return documents.map(toMessage)
  }

  /** The server's plan for {@link page}: which index it walks, and the query as it was sent. */
  explainPage(roomId: string, options: { before?: string | undefined; limit: number }): Promise<unknown> {
    return this.#pageQuery(roomId, options).explain()
  }

  // A range on (roomId, id) walked backwards: never a skip, so every page costs the same.
  #pageQuery(roomId: string, options: { before?: string | undefined; limit: number }) {
    const range = options.before === undefined ? { roomId } : { roomId, id: { $lt: options.before } }
    return this.#model.find(range).sort({ roomId: -1, id: -1 }).limit(options.limit)
  }

  async find(roomId: string, messageId: string): Promise<ChatMessage | undefined> {
    const document = await this.#model.findOne({ roomId, id: messageId }).lean()
    return document ? toMessage(document) : undefined
  }

  /** The newest message of each room asked; a room without messages is absent. */
  async lastOf(roomIds: readonly string[]): Promise<Map<string, ChatMessage>> {
    const newest = await Promise.all(roomIds.map((roomId) => this.page(roomId, { limit: 1 })))
    return new Map(newest.flat().map((message) => [message.roomId, message]))
  }

  /** The names of the collection's indexes, and their keys. */
  async indexes(): Promise<{ name: string; key: Record<string, number> }[]> {
    const indexes = await this.#model.collection.listIndexes().toArray()
    return indexes.map((index) => ({ name: String(index.name), key: index.key as Record<string, number> }))
  }
}

function toDocument(message: ChatMessage): MessageDocument {
  const document: MessageDocument = {
    id: message.id,
    roomId: message.roomId,
    senderId: message.senderId,
    body: Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength),
    headers: message.headers.map(([name, value]) => ({ name, value })),
    sentAt: message.sentAt,
  }
  if (message.position) {
    document.partition = message.position.partition
    document.offset = Number(message.position.offset)
  }
  return document
}

/** A stored document as a message; a lean read answers the body as BSON binary. */
function toMessage(document: MessageDocument): ChatMessage {
  const body = document.body as unknown
  return {
    id: document.id,
    roomId: document.roomId,
    senderId: document.senderId,
    body:
      body instanceof mongoose.mongo.Binary ? body.buffer.subarray(0, body.position) : new Uint8Array(body as Buffer),
    headers: (document.headers ?? []).map(({ name, value }) => [name, value] as [string, string]),
    sentAt: new Date(document.sentAt),
    ...(typeof document.partition === 'number' && typeof document.offset === 'number'
      ? { position: { partition: document.partition, offset: BigInt(document.offset) } }
      : {}),
  }
}

function isDuplicate(error: unknown): boolean {
  return (error as { code?: number } | null)?.code === DUPLICATE_KEY
}
