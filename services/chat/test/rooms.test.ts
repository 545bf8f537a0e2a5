import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { assertEveryRouteDocumented } from '@timedeal/platform'
import { freePort, startTestIssuer, type TestIssuer, uniqueName } from '@timedeal/platform/testing'
import type { ChatMessage } from '../src/adapters/message-store.ts'
import { newMessageId, UUID_PATTERN } from '../src/domain/ids.ts'
import { spawnGoodsService, startTestChatService, type TestChatService, type TestGoodsService } from './support.ts'

interface RoomView {
  id: string
  goodsId: string
  buyerId: string
  sellerId: string
}
interface MessageView {
  id: string
  senderId: string
  text: string | null
  body: string
  headers: [string, string][]
  sentAt: string
}
interface RoomSummaryView extends RoomView {
  lastMessage: MessageView | null
  unreadCount: number
}
interface PagePlan {
  command?: { filter?: unknown; sort?: unknown; limit?: number; skip?: number }
  queryPlanner?: { winningPlan?: unknown }
}
interface MessagePage {
  items: MessageView[]
  nextBefore: string | null
}

let issuer: TestIssuer
let goods: TestGoodsService
let chat: TestChatService

before(async () => {
  issuer = await startTestIssuer()
  goods = await spawnGoodsService(issuer)
  chat = await startTestChatService(goods, issuer)
})

after(async () => {
  await chat?.stop()
  await goods?.stop()
  await issuer?.close()
})

interface User {
  readonly id: string
  readonly token: string
}

async function user(role: 'BUYER' | 'SELLER', id = uniqueName(role.toLowerCase())): Promise<User> {
  return { id, token: await issuer.sign({ sub: id, role }) }
}

/** A seller with goods of their own, and a buyer with a room about it. */
async function openedRoom(): Promise<{ seller: User; buyer: User; goodsId: string; room: RoomView }> {
  const seller = await user('SELLER')
  const buyer = await user('BUYER')
  const goodsId = await goods.createGoods(seller.token)
  const response = await chat.call('POST', '/api/chat/rooms', { token: buyer.token, body: { goodsId } })
  assert.equal(response.status, 201, await response.clone().text())
  return { seller, buyer, goodsId, room: (await response.json()) as RoomView }
}

function message(roomId: string, senderId: string, text: string, at = Date.now()): ChatMessage {
  return {
    id: newMessageId(at),
    roomId,
    senderId,
    body: new TextEncoder().encode(text),
    headers: [['content-type', 'text/plain;charset=utf-8']],
    sentAt: new Date(at),
  }
}

const history = async (token: string, roomId: string, query = ''): Promise<Response> =>
  chat.call('GET', `/api/chat/rooms/${roomId}/messages${query}`, { token })

describe('opening a room', () => {
  test('opening a room again for the same buyer and goods answers the same room, even when the requests race', async () => {
    const { seller, buyer, goodsId, room } = await openedRoom()
    assert.equal(room.buyerId, buyer.id)
    assert.equal(room.sellerId, seller.id, "the seller is the goods' owner at goods-service")
    const again = await chat.call('POST', '/api/chat/rooms', { token: buyer.token, body: { goodsId } })
    assert.equal(again.status, 200)
    assert.equal(((await again.json()) as RoomView).id, room.id)

    const racer = await user('BUYER')
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => chat.call('POST', '/api/chat/rooms', { token: racer.token, body: { goodsId } })),
    )
    const ids = new Set(await Promise.all(answers.map(async (a) => ((await a.json()) as RoomView).id)))
    assert.equal(ids.size, 1, 'one room per buyer and goods')
    assert.equal(answers.filter((a) => a.status === 201).length, 1, 'exactly one request opened it')
    assert.ok(!ids.has(room.id), "another buyer's room is another room")
  })

  test('the seller cannot open a room about their own goods, and unknown goods have no room', async () => {
    const seller = await user('SELLER')
    const goodsId = await goods.createGoods(seller.token)
    const asSeller = await chat.call('POST', '/api/chat/rooms', { token: seller.token, body: { goodsId } })
    assert.equal(asSeller.status, 403)
    assert.equal(((await asSeller.json()) as { code: string }).code, 'FORBIDDEN_ROLE')

    // The same person with a buyer's token is still the goods' owner.
    const sameAsBuyer = await user('BUYER', seller.id)
    const own = await chat.call('POST', '/api/chat/rooms', { token: sameAsBuyer.token, body: { goodsId } })
    assert.equal(own.status, 403)
    assert.equal(((await own.json()) as { code: string }).code, 'SELLER_CANNOT_OPEN_ROOM')

    const buyer = await user('BUYER')
    const unknown = await chat.call('POST', '/api/chat/rooms', {
      token: buyer.token,
      body: { goodsId: 'no-such-goods' },
    })
    assert.equal(unknown.status, 404)
    assert.equal(((await unknown.json()) as { code: string }).code, 'GOODS_NOT_FOUND')

    const anonymous = await chat.call('POST', '/api/chat/rooms', { token: '', body: { goodsId } })
    assert.equal(anonymous.status, 401)
  })

  test('goods-service out of reach is a 503 GOODS_UNAVAILABLE, and a room already open still answers', async () => {
    const { buyer, goodsId, room } = await openedRoom()
    const nowhere = `http://127.0.0.1:${await freePort()}`
    const cut = await startTestChatService({ url: nowhere }, issuer, { GOODS_TIMEOUT_MS: '500' })
    try {
      const answer = await cut.call('POST', '/api/chat/rooms', { token: buyer.token, body: { goodsId } })
      assert.equal(answer.status, 503)
      assert.equal(((await answer.json()) as { code: string }).code, 'GOODS_UNAVAILABLE')
    } finally {
      await cut.stop()
    }
    const again = await chat.call('POST', '/api/chat/rooms', { token: buyer.token, body: { goodsId } })
    assert.equal(((await again.json()) as RoomView).id, room.id)
  })
})

describe('message ids', () => {
  test('ids made in one millisecond, or after the clock steps back, still only grow', () => {
    const now = Date.now()
    const ids = [
      ...Array.from({ length: 5_000 }, () => newMessageId(now)),
      ...Array.from({ length: 10 }, () => newMessageId(now - 60_000)),
    ]
    for (const id of ids) assert.match(id, UUID_PATTERN)
    for (let i = 1; i < ids.length; i++) {
      assert.ok((ids[i - 1] as string) < (ids[i] as string), `id ${i} sorts after id ${i - 1}`)
    }
  })
})

describe('room membership', () => {
  test('a user outside a room cannot read its messages; its buyer and seller can', async () => {
    const { seller, buyer, room } = await openedRoom()
    await chat.service.stores.messages.save(message(room.id, buyer.id, 'is it still available?'))
    const stranger = await user('BUYER')

    const refused = await history(stranger.token, room.id)
    assert.equal(refused.status, 404)
    assert.equal(((await refused.json()) as { code: string }).code, 'ROOM_NOT_FOUND')
    assert.equal(await chat.service.stores.rooms.isMember(room.id, stranger.id), false)

    for (const member of [buyer, seller]) {
      const answer = await history(member.token, room.id)
      assert.equal(answer.status, 200)
      assert.equal(((await answer.json()) as MessagePage).items[0]?.text, 'is it still available?')
      assert.equal(await chat.service.stores.rooms.isMember(room.id, member.id), true)
    }
    const missing = await history(buyer.token, newMessageId())
    assert.equal(missing.status, 404)
  })

  test('a malformed room id, cursor or limit is a 400 problem, never a crash', async () => {
    const { buyer, room } = await openedRoom()
    for (const [path, what] of [
      [`/api/chat/rooms/not-a-room/messages`, 'room id'],
      [`/api/chat/rooms/${room.id}/messages?before=x`, 'cursor'],
      [`/api/chat/rooms/${room.id}/messages?limit=0`, 'limit'],
      [`/api/chat/rooms/${room.id}/messages?limit=1000`, 'limit'],
    ] as const) {
      const answer = await chat.call('GET', path, { token: buyer.token })
      assert.equal(answer.status, 400, what)
      assert.equal(((await answer.json()) as { code: string }).code, 'VALIDATION_FAILED', what)
    }
  })
})

describe('listing rooms', () => {
  test('each room in my list carries its last message and my own unread count', async () => {
    const { seller, buyer, room } = await openedRoom()
    const t = Date.now()
    const sent = [
      message(room.id, buyer.id, 'hello', t),
      message(room.id, seller.id, 'hi', t + 1),
      message(room.id, buyer.id, 'last one', t + 2),
    ]
    for (const m of sent) assert.equal(await chat.service.stores.messages.save(m), true)
    // The seller was away for the buyer's two messages.
    for (const m of [sent[0], sent[2]] as ChatMessage[]) {
      await chat.service.stores.notifications.add({ userId: seller.id, roomId: room.id, messageId: m.id, at: m.sentAt })
    }

    const listOf = async (who: User) => {
      const answer = await chat.call('GET', '/api/chat/rooms', { token: who.token })
      assert.equal(answer.status, 200)
      return ((await answer.json()) as { items: RoomSummaryView[] }).items
    }
    const sellerRooms = await listOf(seller)
    assert.deepEqual(
      sellerRooms.map((r) => r.id),
      [room.id],
    )
    assert.equal(sellerRooms[0]?.lastMessage?.text, 'last one')
    assert.equal(sellerRooms[0]?.lastMessage?.id, sent[2]?.id)
    assert.equal(sellerRooms[0]?.unreadCount, 2)
    const buyerRooms = await listOf(buyer)
    assert.equal(buyerRooms[0]?.unreadCount, 0, "the seller's unread messages are not the buyer's")
    assert.equal(buyerRooms[0]?.lastMessage?.senderId, buyer.id)

    assert.equal(await chat.service.stores.notifications.markRoomRead(room.id, seller.id), 2)
    assert.equal((await listOf(seller))[0]?.unreadCount, 0)

    const newcomer = await user('BUYER')
    assert.deepEqual(await listOf(newcomer), [])
  })
})

describe('message history', () => {
  test('messages are stored with a unique index on (roomId, id), with real dates, and once per id', async () => {
    const indexes = await chat.service.stores.messages.indexes()
    const byRoomAndId = indexes.find((index) => JSON.stringify(index.key) === JSON.stringify({ roomId: 1, id: 1 }))
    assert.ok(byRoomAndId, `no (roomId, id) index among ${JSON.stringify(indexes)}`)

    const { buyer, room } = await openedRoom()
    const first = message(room.id, buyer.id, 'once')
    assert.equal(await chat.service.stores.messages.save(first), true)
    assert.equal(await chat.service.stores.messages.save(first), false, 'a redelivered message is not stored twice')
    const stored = await chat.service.stores.messages.page(room.id, { limit: 10 })
    assert.equal(stored.length, 1)
    assert.ok(stored[0]?.sentAt instanceof Date)
    assert.equal(stored[0]?.sentAt.getTime(), first.sentAt.getTime())
    assert.deepEqual(stored[0]?.headers, first.headers)
  })

  test('a page is a range on the (roomId, id) index, walked newest first, never a skip over older pages', async () => {
    const roomId = newMessageId()
    const before = newMessageId()
    const plan = (await chat.service.stores.messages.explainPage(roomId, { before, limit: 20 })) as PagePlan
    // The query as the server received it (MongoDB and FerretDB both echo it).
    const command = plan.command ?? {}
    assert.deepEqual(command.filter, { roomId, id: { $lt: before } })
    assert.deepEqual(command.sort, { roomId: -1, id: -1 })
    assert.equal(command.limit, 20)
    assert.equal(command.skip, undefined)
    // MongoDB names the index it walks; the local FerretDB (SQLite) plans no secondary index at all.
    const winning = plan.queryPlanner?.winningPlan
    if (winning) assert.match(JSON.stringify(winning), /"indexName":"messages_by_room_and_id"/)
  })

  test('paging with before walks every message once, newest first, and keeps bodies byte for byte', async () => {
    const { seller, buyer, room } = await openedRoom()
    const other = await openedRoom()
    const t = Date.now()
    const sent = Array.from({ length: 25 }, (_, i) => message(room.id, i % 2 ? seller.id : buyer.id, `m${i}`, t + i))
    // Bytes that are not UTF-8, NUL among them, come back as they were.
    sent[3] = {
      ...(sent[3] as ChatMessage),
      body: new Uint8Array([0, 255, 10, 0, 7]),
      headers: [['content-type', 'application/octet-stream']],
    }
    assert.equal(await chat.service.stores.messages.saveMany(sent), 25)
    await chat.service.stores.messages.save(message(other.room.id, other.buyer.id, 'elsewhere', t + 5))

    const seen: MessageView[] = []
    let query = '?limit=7'
    let pages = 0
    for (; pages < 10; pages++) {
      const answer = await history(seller.token, room.id, query)
      assert.equal(answer.status, 200)
      const page = (await answer.json()) as MessagePage
      seen.push(...page.items)
      if (!page.nextBefore) break
      query = `?limit=7&before=${page.nextBefore}`
    }
    assert.equal(pages + 1, 4, '25 messages are four pages of 7, the last one short')
    assert.deepEqual(
      seen.map((m) => m.id),
      sent.map((m) => m.id).reverse(),
    )
    const binary = seen.find((m) => m.id === sent[3]?.id)
    assert.deepEqual([...Buffer.from(binary?.body ?? '', 'base64')], [0, 255, 10, 0, 7])
    assert.equal(binary?.text, null)

    // A full last page says there is nothing older.
    const exact = (await (await history(seller.token, room.id, `?limit=5&before=${sent[5]?.id}`)).json()) as MessagePage
    assert.equal(exact.items.length, 5)
    assert.equal(exact.nextBefore, null)

    const resumed = await chat.service.stores.messages.after(room.id, sent[20]?.id as string, 100)
    assert.deepEqual(
      resumed.map((m) => m.id),
      sent.slice(21).map((m) => m.id),
    )
  })

  test('a page near the oldest of 10,000 messages takes about as long as the newest page', async () => {
    const { buyer, room } = await openedRoom()
    const count = 10_000
    const start = Date.now() - count
    const all = Array.from({ length: count }, (_, i) => message(room.id, buyer.id, `message ${i}`, start + i))
    for (let i = 0; i < count; i += 2_000) {
      assert.equal(await chat.service.stores.messages.saveMany(all.slice(i, i + 2_000)), 2_000)
    }
    const limit = 50
    const timePage = async (before?: string) => {
      const began = process.hrtime.bigint()
      const answer = await history(buyer.token, room.id, `?limit=${limit}${before ? `&before=${before}` : ''}`)
      const page = (await answer.json()) as MessagePage
      const ms = Number(process.hrtime.bigint() - began) / 1e6
      assert.equal(page.items.length, limit)
      return { ms, page }
    }
    // Pages just below a cursor near each end: the newest ones, and ones near the very oldest.
    const nearNewest = all[count - 1 - limit * 2]?.id as string
    const nearOldest = all[limit * 2]?.id as string
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
    const newest: number[] = []
    const oldest: number[] = []
    await timePage(nearNewest) // warm-up: the first read pays for connections and caches
    for (let round = 0; round < 3; round++) {
      newest.push((await timePage(nearNewest)).ms)
      const old = await timePage(nearOldest)
      oldest.push(old.ms)
      assert.equal(old.page.items[0]?.id, all[limit * 2 - 1]?.id)
      assert.equal(old.page.items.at(-1)?.id, all[limit]?.id)
    }
    const ratio = median(oldest) / median(newest)
    assert.ok(
      ratio < 4,
      `a page near the oldest took ${median(oldest).toFixed(1)} ms, near the newest ${median(newest).toFixed(1)} ms (ratio ${ratio.toFixed(2)})`,
    )
  })
})

describe('notifications', () => {
  test('notifications list newest first with my unread count, and reading by id, by room or all clears only mine', async () => {
    const { seller, buyer, room } = await openedRoom()
    const second = await openedRoom()
    const store = chat.service.stores.notifications
    const t = Date.now()
    const m1 = message(room.id, buyer.id, 'a', t)
    const m2 = message(room.id, buyer.id, 'b', t + 1)
    const first = await store.add({ userId: seller.id, roomId: room.id, messageId: m1.id, at: m1.sentAt })
    const again = await store.add({ userId: seller.id, roomId: room.id, messageId: m1.id, at: m1.sentAt })
    assert.equal(again.id, first.id, 'a message notifies a user once')
    await store.add({ userId: seller.id, roomId: room.id, messageId: m2.id, at: m2.sentAt })
    const elsewhere = message(second.room.id, seller.id, 'c', t + 2)
    await store.add({ userId: seller.id, roomId: second.room.id, messageId: elsewhere.id, at: elsewhere.sentAt })
    await store.add({ userId: buyer.id, roomId: room.id, messageId: elsewhere.id, at: elsewhere.sentAt })

    const list = async (who: User, query = '') => {
      const answer = await chat.call('GET', `/api/chat/notifications${query}`, { token: who.token })
      assert.equal(answer.status, 200)
      return (await answer.json()) as {
        items: { id: string; messageId: string; readAt: string | null }[]
        unreadCount: number
        nextBefore: string | null
      }
    }
    const read = async (who: User, body: object) => {
      const answer = await chat.call('POST', '/api/chat/notifications/read', { token: who.token, body })
      assert.equal(answer.status, 200, await answer.clone().text())
      return (await answer.json()) as { marked: number; unreadCount: number }
    }

    const all = await list(seller)
    assert.deepEqual(
      all.items.map((n) => n.messageId),
      [elsewhere.id, m2.id, m1.id],
    )
    assert.equal(all.unreadCount, 3)
    const firstPage = await list(seller, '?limit=2')
    assert.equal(firstPage.items.length, 2)
    const rest = await list(seller, `?limit=2&before=${firstPage.nextBefore}`)
    assert.deepEqual(
      rest.items.map((n) => n.messageId),
      [m1.id],
    )

    // Another user's notification ids do nothing to theirs.
    const buyersOwn = (await list(buyer)).items.map((n) => n.id)
    assert.deepEqual(await read(seller, { ids: buyersOwn }), { marked: 0, unreadCount: 3 })
    assert.deepEqual(await read(seller, { ids: [first.id] }), { marked: 1, unreadCount: 2 })
    assert.deepEqual(await read(seller, { roomId: room.id }), { marked: 1, unreadCount: 1 })
    assert.deepEqual(
      (await list(seller, '?unread=true')).items.map((n) => n.messageId),
      [elsewhere.id],
    )
    assert.deepEqual(await read(seller, {}), { marked: 1, unreadCount: 0 })
    assert.equal((await list(buyer)).unreadCount, 1, "the buyer's stays unread")

    const both = await chat.call('POST', '/api/chat/notifications/read', {
      token: seller.token,
      body: { ids: [first.id], roomId: room.id },
    })
    assert.equal(both.status, 400)
  })
})

describe('documentation', () => {
  test('every public route is in /openapi.json with its request, responses and problem codes', async () => {
    const document = (await (await chat.app.request('/openapi.json')).json()) as {
      openapi: string
      info: { title: string }
      paths: Record<string, unknown>
    }
    assert.equal(document.openapi, '3.1.0')
    assert.equal(document.info.title, 'chat-service')
    for (const path of [
      '/api/chat/rooms',
      '/api/chat/rooms/{id}/messages',
      '/api/chat/notifications',
      '/api/chat/notifications/read',
    ]) {
      assert.ok(document.paths[path], `${path} is documented`)
    }
    await assertEveryRouteDocumented(chat.app as never)
  })
})
