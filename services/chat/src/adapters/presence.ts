import type { Redis } from '@timedeal/platform'
import type { PushedNotification } from '../flows/hub.ts'

/**
 * Who is in which room, in Redis: a sorted set per room of `user|session` scored by when the
 * entry expires. Each instance renews the entries of its own sessions while they are
 * connected (their heart-beats keep them so); a crashed instance stops renewing and its entries
 * lapse after the time to live.
 */
export class RedisPresence {
  readonly #redis: Redis
  readonly #prefix: string
  readonly #ttlMs: number

  constructor(redis: Redis, prefix: string, ttlMs: number) {
    this.#redis = redis
    this.#prefix = prefix
    this.#ttlMs = ttlMs
  }

  async enter(roomId: string, userId: string, sessionId: string): Promise<void> {
    await this.renew([{ roomId, userId, sessionId }])
  }

  async renew(entries: readonly { roomId: string; userId: string; sessionId: string }[]): Promise<void> {
    if (entries.length === 0) return
    const until = Date.now() + this.#ttlMs
    const pipeline = this.#redis.pipeline()
    for (const { roomId, userId, sessionId } of entries) {
      pipeline.zadd(this.#key(roomId), until, member(userId, sessionId))
      pipeline.pexpire(this.#key(roomId), this.#ttlMs * 2)
    }
    await pipeline.exec()
  }

  async leave(roomId: string, userId: string, sessionId: string): Promise<void> {
    await this.#redis.zrem(this.#key(roomId), member(userId, sessionId))
  }

  async isPresent(roomId: string, userId: string): Promise<boolean> {
    const key = this.#key(roomId)
    await this.#redis.zremrangebyscore(key, '-inf', Date.now())
    const members = await this.#redis.zrange(key, 0, -1)
    return members.some((entry) => entry.startsWith(`${userId}|`))
  }

  /** Who is present in each of the rooms, in one round trip (a pipeline) whatever their number. */
  async presentIn(roomIds: Iterable<string>): Promise<Map<string, Set<string>>> {
    const rooms = [...new Set(roomIds)]
    const present = new Map<string, Set<string>>()
    if (rooms.length === 0) return present
    const now = Date.now()
    const pipeline = this.#redis.pipeline()
    // Only entries not yet expired count; expired ones are left for the next renewal or leave.
    for (const roomId of rooms) pipeline.zrangebyscore(this.#key(roomId), now, '+inf')
    const replies = (await pipeline.exec()) ?? []
    rooms.forEach((roomId, index) => {
      const [error, members] = replies[index] ?? [null, []]
      if (error) throw error
      present.set(roomId, new Set((members as string[]).map((entry) => entry.slice(0, entry.lastIndexOf('|')))))
    })
    return present
  }

  #key(roomId: string): string {
    return `${this.#prefix}:presence:${roomId}`
  }
}

const member = (userId: string, sessionId: string) => `${userId}|${sessionId}`

/** Notifications pushed to every instance over Redis pub/sub; each delivers to its own sessions. */
export class RedisNotificationFanOut {
  readonly #publisher: Redis
  readonly #channel: string

  constructor(publisher: Redis, prefix: string) {
    this.#publisher = publisher
    this.#channel = `${prefix}:notifications`
  }

  async push(userId: string, notification: PushedNotification): Promise<void> {
    await this.#publisher.publish(this.#channel, JSON.stringify({ userId, notification }))
  }

  /** Pushes many in one round trip (a pipeline). */
  async pushMany(pushes: readonly { userId: string; notification: PushedNotification }[]): Promise<void> {
    if (pushes.length === 0) return
    const pipeline = this.#publisher.pipeline()
    for (const push of pushes) pipeline.publish(this.#channel, JSON.stringify(push))
    await pipeline.exec()
  }

  /** Listens on a connection of its own (a subscribed Redis connection can do nothing else). */
  async listen(subscriber: Redis, deliver: (userId: string, notification: PushedNotification) => void): Promise<void> {
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.#channel) return
      const { userId, notification } = JSON.parse(text) as { userId: string; notification: PushedNotification }
      deliver(userId, notification)
    })
    // A SUBSCRIBE written during the connection's handshake puts it in subscriber mode before
    // the client's own ready check, which then fails and drops the connection: wait until ready.
    // (Not events.once: a connection error before ready is retried, not a reason to give up.)
    // A lazy connection ('wait') connects on the SUBSCRIBE itself, which then simply queues.
    if (subscriber.status !== 'ready' && subscriber.status !== 'wait')
      await new Promise((resolve) => subscriber.once('ready', resolve))
    await subscriber.subscribe(this.#channel)
  }
}
