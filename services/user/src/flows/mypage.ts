/**
 * My page: the caller's profile (ours) beside what other services hold for them: recent orders
 * (order-service), the seller's goods or the buyer's wishlist (goods-service) and the unread
 * chat notifications (chat-service). The parts are fetched at the same time; a part that fails
 * is left out and named in `degraded`, so one slow or broken service never takes the page down.
 */
import type { Caller } from '@timedeal/platform'
import { z } from 'zod'
import { type Downstream, DownstreamFailure } from '../adapters/downstream.ts'
import type { ProfileView } from '../domain/accounts.ts'

/** The parts that come from other services, as `degraded` names them. */
export const REMOTE_PARTS = ['orders', 'goods', 'wishlist', 'unreadNotifications'] as const
export type RemotePart = (typeof REMOTE_PARTS)[number]

const orderSummary = z.object({
  id: z.string(),
  goodsId: z.string(),
  quantity: z.number().int(),
  totalAmount: z.number().int(),
  state: z.string(),
  placedAt: z.string(),
})
const goodsSummary = z.object({
  id: z.string(),
  name: z.string(),
  price: z.number().int(),
  stockAvailable: z.number().int(),
  initialStock: z.number().int(),
  saleState: z.string(),
  saleStartsAt: z.string(),
  saleEndsAt: z.string(),
})
const wishlistEntry = z.object({ goods: goodsSummary, addedAt: z.string() })

// What the page reads of each service's answer; zod drops every other field.
const orderPage = z.object({ items: z.array(orderSummary) })
const goodsPage = z.object({ items: z.array(goodsSummary) })
const wishlistAnswer = z.object({ items: z.array(wishlistEntry) })
const notificationPage = z.object({ unreadCount: z.number().int().nonnegative() })

export const myPageSchemas = { orderSummary, goodsSummary, wishlistEntry }

export interface MyPage {
  readonly profile: ProfileView
  readonly orders: z.infer<typeof orderSummary>[] | null
  /** Sellers only. */
  readonly goods?: z.infer<typeof goodsSummary>[] | null
  /** Buyers only. */
  readonly wishlist?: z.infer<typeof wishlistEntry>[] | null
  readonly unreadNotifications: number | null
  readonly degraded: RemotePart[]
  readonly degradedReasons: Partial<Record<RemotePart, string>>
}

export interface MyPageDeps {
  readonly profile: (userId: string) => Promise<ProfileView>
  readonly orders: Downstream
  readonly goods: Downstream
  readonly chat: Downstream
  /** How many orders, goods and wishlist entries the page shows. */
  readonly listLimit: number
  /**
   * Fetch the parts one after another instead of at the same time. Only for measuring what
   * fetching them in parallel gains; never for serving.
   */
  readonly sequential?: boolean
}

/** What the page needs of the request: who asks, and the headers each service checks again. */
export interface PageRequest {
  readonly caller: Caller
  /** The caller's `Authorization` and the trace headers; never an identity header. */
  readonly headers: Record<string, string>
}

type PartResult = { part: RemotePart; value: unknown } | { part: RemotePart; failure: string }

export function createMyPage(deps: MyPageDeps) {
  const limit = deps.listLimit

  /** The remote parts of this caller's page, each a call that never rejects. */
  function partsFor({ caller, headers }: PageRequest): (() => Promise<PartResult>)[] {
    const fetchPart = (part: RemotePart, read: () => Promise<unknown>) => async (): Promise<PartResult> => {
      try {
        return { part, value: await read() }
      } catch (error) {
        if (error instanceof DownstreamFailure) return { part, failure: error.message }
        throw error
      }
    }
    const orders = fetchPart('orders', async () => {
      const page = await deps.orders.getJson(`/api/orders?limit=${limit}`, headers, orderPage)
      return page.items
    })
    const listing =
      caller.role === 'SELLER'
        ? fetchPart('goods', async () => {
            const page = await deps.goods.getJson(`/api/goods/mine?limit=${limit}`, headers, goodsPage)
            return page.items
          })
        : fetchPart('wishlist', async () => {
            const answer = await deps.goods.getJson('/api/wishlist', headers, wishlistAnswer)
            return answer.items.slice(0, limit)
          })
    const unread = fetchPart('unreadNotifications', async () => {
      const page = await deps.chat.getJson('/api/chat/notifications?limit=1&unread=true', headers, notificationPage)
      return page.unreadCount
    })
    return [orders, listing, unread]
  }

  async function gather<T>(tasks: (() => Promise<T>)[]): Promise<T[]> {
    if (!deps.sequential) return Promise.all(tasks.map((task) => task()))
    const results: T[] = []
    for (const task of tasks) results.push(await task())
    return results
  }

  return {
    async view(request: PageRequest): Promise<MyPage> {
      const remote = partsFor(request)
      // The profile is ours: without it there is no page, so its failure is the page's.
      const profileTask = async (): Promise<PartResult | ProfileView> => deps.profile(request.caller.id)
      const [profile, ...parts] = await gather<PartResult | ProfileView>([profileTask, ...remote])
      const page: Record<string, unknown> = { profile }
      const degraded: RemotePart[] = []
      const degradedReasons: Partial<Record<RemotePart, string>> = {}
      for (const result of parts as PartResult[]) {
        if ('value' in result) {
          page[result.part] = result.value
        } else {
          page[result.part] = null
          degraded.push(result.part)
          degradedReasons[result.part] = result.failure
        }
      }
      return { ...(page as Omit<MyPage, 'degraded' | 'degradedReasons'>), degraded, degradedReasons }
    },
  }
}

export type MyPageFlow = ReturnType<typeof createMyPage>
