/**
 * chat-service's view of goods-service: who sells a goods item, over HTTP (`GET /api/goods/:id`).
 * Every call goes through a circuit breaker around a timeout (cockatiel): after
 * `failureThreshold` failures in a row (timeouts, refused connections, 5xx) calls are answered
 * 503 GOODS_UNAVAILABLE at once for `openMs`, so a slow goods-service never piles up requests here.
 */
import { type Logger, Problem } from '@timedeal/platform'
import {
  BrokenCircuitError,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel'
import { z } from 'zod'

export interface GoodsOwner {
  readonly id: string
  readonly sellerId: string
}

export interface GoodsClient {
  /** The goods and its seller, or undefined when goods-service does not know the id. */
  owner(goodsId: string, context?: Readonly<Record<string, string>>): Promise<GoodsOwner | undefined>
}

export interface GoodsClientOptions {
  readonly baseUrl: string
  readonly timeoutMs: number
  readonly failureThreshold: number
  readonly openMs: number
  readonly logger?: Logger
  readonly fetch?: typeof fetch
}

const goodsBody = z.object({ id: z.string(), sellerId: z.string() })

export const goodsUnavailable = (detail = 'goods-service cannot be reached; try again shortly') =>
  new Problem({ status: 503, code: 'GOODS_UNAVAILABLE', detail })

interface Answer {
  readonly status: number
  readonly text: string
}

const isConnectionFailure = (error: Error) => error instanceof TypeError && error.message === 'fetch failed'
const isFailure = (error: Error) => error instanceof TaskCancelledError || isConnectionFailure(error)
const isServerError = (answer: unknown) => (answer as Answer).status >= 500

export function createGoodsClient(options: GoodsClientOptions): GoodsClient {
  const doFetch = options.fetch ?? fetch
  const base = options.baseUrl.replace(/\/+$/, '')
  const breaker = circuitBreaker(handleWhen(isFailure).orWhenResult(isServerError), {
    halfOpenAfter: options.openMs,
    breaker: new ConsecutiveBreaker(options.failureThreshold),
  })
  breaker.onBreak(() => options.logger?.warn('goods-service failed repeatedly; calls to it stop for a moment'))
  breaker.onReset(() => options.logger?.info('goods-service answers again'))
  const policy = wrap(breaker, timeout(options.timeoutMs, TimeoutStrategy.Aggressive))

  async function get(url: string, context: Readonly<Record<string, string>>): Promise<Answer> {
    try {
      // The body is read inside the timeout, so a stalled body times out too.
      return await policy.execute(async ({ signal }) => {
        const response = await doFetch(url, { headers: { ...context }, signal })
        return { status: response.status, text: await response.text() }
      })
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        throw goodsUnavailable('goods-service failed repeatedly; not calling it for a moment')
      }
      if (error instanceof TaskCancelledError) {
        throw goodsUnavailable(`goods-service did not answer within ${options.timeoutMs} ms`)
      }
      if (error instanceof Error && isConnectionFailure(error)) throw goodsUnavailable()
      throw error
    }
  }

  return {
    async owner(goodsId, context = {}) {
      const answer = await get(`${base}/api/goods/${encodeURIComponent(goodsId)}`, context)
      if (answer.status === 404) return undefined
      if (answer.status !== 200) throw goodsUnavailable(`goods-service answered ${answer.status}`)
      const parsed = goodsBody.safeParse(parseJson(answer.text))
      if (!parsed.success) throw goodsUnavailable('goods-service answered with goods this client cannot read')
      return { id: parsed.data.id, sellerId: parsed.data.sellerId }
    },
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
