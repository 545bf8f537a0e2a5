import { useEffect, useState } from 'react'
import { Link, useNavigate, useParams } from 'react-router'
import { ApiProblem, api, type Goods, type Order } from '../api.ts'
import { formatPrice, type Translate, useI18n } from '../i18n.tsx'
import { buyOnce, postOrder } from '../orders.ts'
import { useNow, usePolling, useSession } from '../session.ts'
import { Countdown, ProblemMessage, StateBadge } from './parts.tsx'
import { STOCK_POLL_MS, StockMeter } from './sales.tsx'

type Stock = Pick<Goods, 'stockAvailable' | 'initialStock' | 'saleState' | 'saleStartsAt' | 'saleEndsAt'>

/** Refusals a buyer can act on get their own words; anything else shows the server's detail. */
const KNOWN_REFUSALS = [
  'SOLD_OUT',
  'INSUFFICIENT_STOCK',
  'SALE_NOT_OPEN',
  'SALE_CLOSED',
  'PURCHASE_LIMIT_EXCEEDED',
  'TOO_MANY_PENDING_ORDERS',
] as const

const FINAL_STATES = new Set(['PAID', 'FAILED', 'CANCELLED', 'EXPIRED', 'SHIPPED', 'DELIVERED', 'RETURNED'])

function refusalText(problem: ApiProblem, t: Translate): string {
  const known = KNOWN_REFUSALS.find((code) => code === problem.code)
  if (known) return t(`buy.${known}`)
  if (problem.status === 0) return t('buy.NETWORK')
  return t('common.error', { detail: problem.message || problem.code })
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export function GoodsPage() {
  const { id = '' } = useParams()
  const { t, language } = useI18n()
  const { user } = useSession()
  const navigate = useNavigate()
  const now = useNow()
  const [goods, setGoods] = useState<Goods>()
  const [loadProblem, setLoadProblem] = useState<ApiProblem>()
  const [quantity, setQuantity] = useState(1)
  const [buying, setBuying] = useState(false)
  const [notice, setNotice] = useState<{ text: string; kind: 'info' | 'error' | 'ok' }>()
  const [order, setOrder] = useState<Order>()

  useEffect(() => {
    api<Goods>(`/api/goods/${encodeURIComponent(id)}`)
      .then(setGoods)
      .catch((error: unknown) => setLoadProblem(error instanceof ApiProblem ? error : undefined))
  }, [id])

  usePolling(
    () => {
      api<Stock>(`/api/goods/${encodeURIComponent(id)}/stock`)
        .then((stock) => setGoods((current) => (current ? { ...current, ...stock } : current)))
        .catch(() => {})
    },
    STOCK_POLL_MS,
    id,
  )

  /** Until the order is settled: the payment runs after the order is placed. */
  async function follow(placed: Order): Promise<void> {
    let current = placed
    for (let attempt = 0; attempt < 120 && !FINAL_STATES.has(current.state); attempt += 1) {
      await wait(1000)
      current = await api<Order>(`/api/orders/${placed.id}`).catch(() => current)
      setOrder(current)
    }
  }

  async function buy(): Promise<void> {
    setBuying(true)
    setOrder(undefined)
    setNotice({ text: t('goods.buying'), kind: 'info' })
    try {
      const placed = await buyOnce({
        post: postOrder(id, quantity),
        onRetry: (seconds) => setNotice({ text: t('buy.retry', { seconds }), kind: 'info' }),
      })
      setOrder(placed)
      setNotice(undefined)
      await follow(placed)
    } catch (error) {
      if (!(error instanceof ApiProblem)) throw error
      setNotice({ text: refusalText(error, t), kind: 'error' })
    } finally {
      setBuying(false)
    }
  }

  async function askSeller(): Promise<void> {
    try {
      const room = await api<{ id: string }>('/api/chat/rooms', { method: 'POST', body: { goodsId: id } })
      navigate(`/chat/${room.id}`)
    } catch (error) {
      if (error instanceof ApiProblem) setNotice({ text: refusalText(error, t), kind: 'error' })
    }
  }

  if (loadProblem) return <ProblemMessage problem={loadProblem} />
  if (!goods) return <p>{t('common.loading')}</p>
  const limit = goods.purchaseLimit ?? 10
  const isBuyer = user?.role === 'BUYER'

  return (
    <article className="goods">
      <p>
        <Link to="/">← {t('goods.back')}</Link>
      </p>
      <h1>{goods.name}</h1>
      <p>{goods.description}</p>
      <p className="price">{t('sales.price', { price: formatPrice(goods.price, language) })}</p>
      <p>
        <StateBadge state={goods.saleState} /> <Countdown goods={goods} now={now} />
      </p>
      <StockMeter goods={goods} />
      {goods.purchaseLimit !== null && <p>{t('sales.limit', { limit: goods.purchaseLimit })}</p>}
      {isBuyer ? (
        <div className="buy">
          <label>
            {t('goods.quantity')}
            <select value={quantity} onChange={(e) => setQuantity(Number(e.target.value))}>
              {Array.from({ length: Math.max(1, Math.min(limit, 10)) }, (_, index) => index + 1).map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </label>
          <button type="button" className="primary" disabled={buying} onClick={() => void buy()}>
            {t('goods.buy')}
          </button>
          <button type="button" onClick={() => void askSeller()}>
            {t('goods.chatSeller')}
          </button>
        </div>
      ) : (
        <p>
          <Link to={`/signin?next=/goods/${id}`}>{t('goods.signInToBuy')}</Link>
        </p>
      )}
      <div aria-live="polite" className="outcome">
        {notice && (
          <p className={`notice notice-${notice.kind}`} role={notice.kind === 'error' ? 'alert' : 'status'}>
            {notice.text}
          </p>
        )}
        {order && (
          <p
            className={`notice ${order.state === 'PAID' ? 'notice-ok' : 'notice-info'}`}
            data-order-state={order.state}
          >
            {order.state === 'PAID'
              ? t('goods.paid')
              : order.state === 'FAILED'
                ? t('goods.failed', { reason: order.failureReason ?? '' })
                : t('goods.placed', { state: order.state })}{' '}
            <strong className="order-state">{order.state}</strong>
          </p>
        )}
      </div>
    </article>
  )
}
