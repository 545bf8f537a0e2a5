import type { Room } from './room-store.ts'

/** Where rooms are found when they are not cached (RoomStore). */
export interface RoomSource {
  find(roomId: string): Promise<Room | undefined>
}

/**
 * Rooms kept in memory, the least recently used dropped past `capacity`. A room never changes
 * once opened (its buyer, seller and goods are fixed), so a cached room is never stale; a room
 * not found is not cached, since it may be opened a moment later. Lookups of one room that miss
 * at the same time share one query.
 */
export class RoomCache implements RoomSource {
  readonly #source: RoomSource
  readonly #capacity: number
  /** Insertion order is recency: a hit moves the room to the end, the first one is dropped. */
  readonly #rooms = new Map<string, Room>()
  readonly #loading = new Map<string, Promise<Room | undefined>>()

  constructor(source: RoomSource, capacity: number) {
    this.#source = source
    this.#capacity = capacity
  }

  find(roomId: string): Promise<Room | undefined> {
    const cached = this.#rooms.get(roomId)
    if (cached) {
      this.#rooms.delete(roomId)
      this.#rooms.set(roomId, cached)
      return Promise.resolve(cached)
    }
    return this.#load(roomId)
  }

  #load(roomId: string): Promise<Room | undefined> {
    let loading = this.#loading.get(roomId)
    if (!loading) {
      loading = this.#source
        .find(roomId)
        .then((room) => {
          if (room) this.#remember(room)
          return room
        })
        .finally(() => this.#loading.delete(roomId))
      this.#loading.set(roomId, loading)
    }
    return loading
  }

  #remember(room: Room): void {
    this.#rooms.set(room.id, room)
    if (this.#rooms.size <= this.#capacity) return
    const oldest = this.#rooms.keys().next()
    if (!oldest.done) this.#rooms.delete(oldest.value)
  }
}
