import { useCallback, useEffect, useState } from 'react'
import { Link } from 'react-router'
import { ApiProblem, api, type Goods, type Order, type Role } from '../api.ts'
import { formatPrice, type Key, useI18n } from '../i18n.tsx'
import { ProblemMessage, RequireSignIn, StateBadge } from './parts.tsx'

/** The goods fields the page gets for a seller's goods and a buyer's wishlist entries. */
type GoodsSummary = Pick<
  Goods,
  'id' | 'name' | 'price' | 'stockAvailable' | 'initialStock' | 'saleState' | 'saleStartsAt' | 'saleEndsAt'
>
type OrderSummary = Pick<Order, 'id' | 'goodsId' | 'quantity' | 'totalAmount' | 'state' | 'placedAt'>
type RemotePart = 'orders' | 'goods' | 'wishlist' | 'unreadNotifications'

/**
 * `GET /api/users/me/mypage` (services/user/src/http/mypage.ts): a part whose service failed or
 * was too slow is null, named in `degraded`, and `degradedReasons` says why. `goods` is there for
 * sellers only and `wishlist` for buyers only.
 */
interface MyPageView {
  readonly profile: { readonly name: string; readonly email: string; readonly role: Role }
  readonly orders: OrderSummary[] | null
  readonly goods?: GoodsSummary[] | null
  readonly wishlist?: { readonly goods: GoodsSummary; readonly addedAt: string }[] | null
  readonly unreadNotifications: number | null
  readonly degraded: RemotePart[]
  readonly degradedReasons: Partial<Record<RemotePart, string>>
}

const PART_TITLES: Record<RemotePart, Key> = {
  orders: 'my.orders',
  goods: 'my.goods',
  wishlist: 'my.wishlist',
  unreadNotifications: 'my.unread',
}

const CANCELLABLE = new Set(['PENDING_PAYMENT', 'PAID'])
const RETURNABLE = new Set(['DELIVERED'])

function Unavailable({ reason }: { reason: string | undefined }) {
  const { t } = useI18n()
  return (
    <p className="degraded-part">
      {t('my.partDown')}
      {reason && <span className="degraded-reason"> ({reason})</span>}
    </p>
  )
}

function OrderRow({ order, onChange }: { order: OrderSummary; onChange: () => void }) {
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
  const { orders, goods, wishlist, unreadNotifications: unread, degradedReasons } = view
  const degraded = view.degraded.map((part) => {
    const reason = degradedReasons[part]
    return reason ? `${t(PART_TITLES[part])} (${reason})` : t(PART_TITLES[part])
  })

  return (
    <>
      {degraded.length > 0 && (
        <p role="status" className="notice notice-error" data-testid="degraded">
          {t('my.degraded', { part: degraded.join(', ') })}
        </p>
      )}
      <section aria-labelledby="profile-heading">
        <h2 id="profile-heading">{t('my.profile')}</h2>
        <p>
          {view.profile.name} · {view.profile.email}
        </p>
      </section>
      <section aria-labelledby="orders-heading">
        <h2 id="orders-heading">{t('my.orders')}</h2>
        {orders === null ? (
          <Unavailable reason={degradedReasons.orders} />
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
      {goods !== undefined && (
        <section aria-labelledby="goods-heading">
          <h2 id="goods-heading">{t('my.goods')}</h2>
          {goods === null ? (
            <Unavailable reason={degradedReasons.goods} />
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
      {wishlist !== undefined && (
        <section aria-labelledby="wishlist-heading">
          <h2 id="wishlist-heading">{t('my.wishlist')}</h2>
          {wishlist === null ? (
            <Unavailable reason={degradedReasons.wishlist} />
          ) : (
            <ul className="plain">
              {wishlist.map(({ goods: one }) => (
                <li key={one.id}>
                  <Link to={`/goods/${one.id}`}>{one.name}</Link> <StateBadge state={one.saleState} />
                </li>
              ))}
              {wishlist.length === 0 && <li>{t('my.none')}</li>}
            </ul>
          )}
        </section>
      )}
      <section aria-labelledby="unread-heading">
        <h2 id="unread-heading">{t('my.unread')}</h2>
        {unread === null ? (
          <Unavailable reason={degradedReasons.unreadNotifications} />
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
