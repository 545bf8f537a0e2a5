import { useCallback, useEffect, useState } from 'react'
import { Link } from 'react-router'
import { ApiProblem, api, type Goods, type Order } from '../api.ts'
import { formatPrice, useI18n } from '../i18n.tsx'
import { ProblemMessage, RequireSignIn, StateBadge } from './parts.tsx'

/**
 * `GET /api/users/me/mypage`: the parts it could gather, and `degraded` naming those it could
 * not (a slow or stopped service). The page shows what came and says what did not.
 */
interface MyPageView {
  readonly profile?: { readonly name?: string; readonly email?: string; readonly role?: string }
  readonly orders?: unknown
  readonly goods?: unknown
  readonly wishlist?: unknown
  readonly unreadNotifications?: unknown
  readonly degraded?: readonly unknown[]
  readonly [part: string]: unknown
}

const CANCELLABLE = new Set(['PENDING_PAYMENT', 'PAID'])
const RETURNABLE = new Set(['DELIVERED'])

/** A part is a list, or a page of one (`items`); null when it is missing. */
function listOf<T>(part: unknown): T[] | null {
  if (Array.isArray(part)) return part as T[]
  if (part && typeof part === 'object' && Array.isArray((part as { items?: unknown }).items))
    return (part as { items: T[] }).items
  return null
}

/** A degraded entry is a part's name, or an object naming it. */
function partName(entry: unknown): string {
  if (typeof entry === 'string') return entry
  if (entry && typeof entry === 'object') {
    const named = entry as { part?: unknown; name?: unknown; service?: unknown }
    return String(named.part ?? named.name ?? named.service ?? JSON.stringify(entry))
  }
  return String(entry)
}

function unreadOf(view: MyPageView): number | null {
  for (const key of ['unreadNotifications', 'unreadCount', 'unreadChatNotifications', 'chat']) {
    const value = view[key]
    if (typeof value === 'number') return value
    if (value && typeof value === 'object' && typeof (value as { unreadCount?: unknown }).unreadCount === 'number')
      return (value as { unreadCount: number }).unreadCount
  }
  return null
}

function Unavailable() {
  const { t } = useI18n()
  return <p className="degraded-part">{t('my.partDown')}</p>
}

function OrderRow({ order, onChange }: { order: Order; onChange: () => void }) {
  const { t, language } = useI18n()
  const [problem, setProblem] = useState<ApiProblem>()
  const act = async (action: 'cancel' | 'return') => {
    setProblem(undefined)
    try {
      await api(`/api/orders/${order.id}/${action}`, { method: 'POST' })
      onChange()
    } catch (error) {
      if (error instanceof ApiProblem) setProblem(error)
    }
  }
  return (
    <li className="order" data-order-id={order.id}>
      <span>
        <Link to={`/goods/${order.goodsId}`}>{order.goodsId}</Link> × {order.quantity} ·{' '}
        {formatPrice(order.totalAmount, language)}
      </span>
      <span className={`order-state state-${order.state.toLowerCase()}`}>
        <span className="visually-hidden">{t('order.state')}: </span>
        {order.state}
      </span>
      {CANCELLABLE.has(order.state) && (
        <button type="button" onClick={() => void act('cancel')}>
          {t('my.cancel')}
        </button>
      )}
      {RETURNABLE.has(order.state) && (
        <button type="button" onClick={() => void act('return')}>
          {t('my.return')}
        </button>
      )}
      <ProblemMessage problem={problem} />
    </li>
  )
}

function MyPageContent() {
  const { t } = useI18n()
  const [view, setView] = useState<MyPageView>()
  const [problem, setProblem] = useState<ApiProblem>()

  const load = useCallback(() => {
    api<MyPageView>('/api/users/me/mypage')
      .then((answer) => {
        setView(answer)
        setProblem(undefined)
      })
      .catch((error: unknown) => setProblem(error instanceof ApiProblem ? error : undefined))
  }, [])
  useEffect(load, [load])

  if (problem) return <ProblemMessage problem={problem} />
  if (!view) return <p>{t('common.loading')}</p>
  const degraded = (view.degraded ?? []).map(partName)
  const orders = listOf<Order>(view.orders ?? view.recentOrders)
  const goods = listOf<Goods>(view.goods ?? view.sellerGoods)
  const wishlist = listOf<Goods & { goodsId?: string }>(view.wishlist)
  const unread = unreadOf(view)

  return (
    <>
      {degraded.length > 0 && (
        <p role="status" className="notice notice-error" data-testid="degraded">
          {t('my.degraded', { part: degraded.join(', ') })}
        </p>
      )}
      <section aria-labelledby="profile-heading">
        <h2 id="profile-heading">{t('my.profile')}</h2>
        {view.profile ? (
          <p>
            {view.profile.name} · {view.profile.email}
          </p>
        ) : (
          <Unavailable />
        )}
      </section>
      <section aria-labelledby="orders-heading">
        <h2 id="orders-heading">{t('my.orders')}</h2>
        {orders === null ? (
          <Unavailable />
        ) : orders.length === 0 ? (
          <p>{t('my.noOrders')}</p>
        ) : (
          <ul className="orders">
            {orders.map((order) => (
              <OrderRow key={order.id} order={order} onChange={load} />
            ))}
          </ul>
        )}
      </section>
      {(goods !== null || view.profile?.role === 'SELLER') && (
        <section aria-labelledby="goods-heading">
          <h2 id="goods-heading">{t('my.goods')}</h2>
          {goods === null ? (
            <Unavailable />
          ) : (
            <ul className="plain">
              {goods.map((one) => (
                <li key={one.id}>
                  <Link to={`/goods/${one.id}`}>{one.name}</Link> <StateBadge state={one.saleState} />
                </li>
              ))}
              {goods.length === 0 && <li>{t('my.none')}</li>}
            </ul>
          )}
        </section>
      )}
      {(wishlist !== null || view.profile?.role !== 'SELLER') && (
        <section aria-labelledby="wishlist-heading">
          <h2 id="wishlist-heading">{t('my.wishlist')}</h2>
          {wishlist === null ? (
            <Unavailable />
          ) : (
            <ul className="plain">
              {wishlist.map((one) => {
                const goodsId = one.goodsId ?? one.id
                return (
                  <li key={goodsId}>
                    <Link to={`/goods/${goodsId}`}>{one.name ?? goodsId}</Link>
                  </li>
                )
              })}
              {wishlist.length === 0 && <li>{t('my.none')}</li>}
            </ul>
          )}
        </section>
      )}
      <section aria-labelledby="unread-heading">
        <h2 id="unread-heading">{t('my.unread')}</h2>
        {unread === null ? (
          <Unavailable />
        ) : (
          <p>
            <Link to="/chat">{unread}</Link>
          </p>
        )}
      </section>
    </>
  )
}

export function MyPage() {
  const { t } = useI18n()
  return (
    <section>
      <h1>{t('my.title')}</h1>
      <RequireSignIn>
        <MyPageContent />
      </RequireSignIn>
    </section>
  )
}
