import { type FormEvent, useState } from 'react'
import { Link } from 'react-router'
import { ApiProblem, api, type Goods, type Order, type Page } from '../api.ts'
import { formatPrice, useI18n } from '../i18n.tsx'
import { useNow, usePolling, useSession } from '../session.ts'
import { Countdown, ProblemMessage, RequireSignIn, StateBadge } from './parts.tsx'
import { STOCK_POLL_MS, StockMeter } from './sales.tsx'

/** `datetime-local` wants local wall-clock time without a zone. */
function localInput(at: Date): string {
  const shifted = new Date(at.getTime() - at.getTimezoneOffset() * 60_000)
  return shifted.toISOString().slice(0, 16)
}

function CreateGoodsForm({ onCreated }: { onCreated: () => void }) {
  const { t } = useI18n()
  const [name, setName] = useState('')
  const [description, setDescription] = useState('')
  const [price, setPrice] = useState('10000')
  const [stock, setStock] = useState('10')
  const [startsAt, setStartsAt] = useState(() => localInput(new Date(Date.now() + 5 * 60_000)))
  const [endsAt, setEndsAt] = useState(() => localInput(new Date(Date.now() + 65 * 60_000)))
  const [limit, setLimit] = useState('1')
  const [busy, setBusy] = useState(false)
  const [problem, setProblem] = useState<ApiProblem>()
  const [created, setCreated] = useState<string>()

  async function submit(event: FormEvent): Promise<void> {
    event.preventDefault()
    setBusy(true)
    setProblem(undefined)
    try {
      const goods = await api<Goods>('/api/goods', {
        method: 'POST',
        body: {
          name,
          description,
          price: Number(price),
          initialStock: Number(stock),
          saleStartsAt: new Date(startsAt).toISOString(),
          saleEndsAt: new Date(endsAt).toISOString(),
          purchaseLimit: limit === '' ? null : Number(limit),
        },
      })
      setCreated(goods.name)
      onCreated()
    } catch (error) {
      if (error instanceof ApiProblem) setProblem(error)
    } finally {
      setBusy(false)
    }
  }

  return (
    <form onSubmit={(event) => void submit(event)} aria-busy={busy} className="grid-form">
      <label>
        {t('seller.name')}
        <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      <label className="wide">
        {t('seller.description')}
        <textarea maxLength={5000} value={description} onChange={(e) => setDescription(e.target.value)} />
      </label>
      <label>
        {t('seller.price')}
        <input type="number" required min={0} step={1} value={price} onChange={(e) => setPrice(e.target.value)} />
      </label>
      <label>
        {t('seller.stock')}
        <input type="number" required min={0} step={1} value={stock} onChange={(e) => setStock(e.target.value)} />
      </label>
      <label>
        {t('seller.startsAt')}
        <input type="datetime-local" required value={startsAt} onChange={(e) => setStartsAt(e.target.value)} />
      </label>
      <label>
        {t('seller.endsAt')}
        <input type="datetime-local" required value={endsAt} onChange={(e) => setEndsAt(e.target.value)} />
      </label>
      <label>
        {t('seller.limit')}
        <input type="number" min={1} step={1} value={limit} onChange={(e) => setLimit(e.target.value)} />
      </label>
      <ProblemMessage problem={problem} />
      {created && <p role="status">{t('seller.created', { name: created })}</p>}
      <button type="submit" className="primary" disabled={busy}>
        {t('seller.submit')}
      </button>
    </form>
  )
}

function SellerContent() {
  const { t, language } = useI18n()
  const now = useNow()
  const [goods, setGoods] = useState<Goods[]>([])
  const [orders, setOrders] = useState<Order[]>([])
  const [problem, setProblem] = useState<ApiProblem>()
  const [generation, setGeneration] = useState(0)

  usePolling(
    () => {
      Promise.all([api<Page<Goods>>('/api/goods/mine?limit=50'), api<Page<Order>>('/api/orders?limit=20')])
        .then(([mine, sold]) => {
          setGoods(mine.items)
          setOrders(sold.items)
          setProblem(undefined)
        })
        .catch((error: unknown) => setProblem(error instanceof ApiProblem ? error : undefined))
    },
    STOCK_POLL_MS,
    String(generation),
  )

  return (
    <>
      <section aria-labelledby="create-heading">
        <h2 id="create-heading">{t('seller.create')}</h2>
        <CreateGoodsForm onCreated={() => setGeneration((n) => n + 1)} />
      </section>
      <section aria-labelledby="sales-heading">
        <h2 id="sales-heading">{t('seller.sales')}</h2>
        <ProblemMessage problem={problem} />
        <ul className="cards">
          {goods.map((one) => (
            <li key={one.id} className="card">
              <h3>
                <Link to={`/goods/${one.id}`}>{one.name}</Link>
              </h3>
              <p>
                <StateBadge state={one.saleState} /> <Countdown goods={one} now={now} />
              </p>
              <StockMeter goods={one} />
              <p>{t('seller.sold', { sold: one.initialStock - one.stockAvailable })}</p>
            </li>
          ))}
        </ul>
      </section>
      <section aria-labelledby="seller-orders-heading">
        <h2 id="seller-orders-heading">{t('seller.orders')}</h2>
        <ul className="orders">
          {orders.map((order) => (
            <li key={order.id} className="order">
              <span>
                {order.goodsId} × {order.quantity} · {formatPrice(order.totalAmount, language)}
              </span>
              <span className={`order-state state-${order.state.toLowerCase()}`}>{order.state}</span>
            </li>
          ))}
        </ul>
      </section>
    </>
  )
}

export function SellerPage() {
  const { t } = useI18n()
  const { user } = useSession()
  return (
    <section>
      <h1>{t('seller.title')}</h1>
      <RequireSignIn>{user?.role === 'SELLER' ? <SellerContent /> : <p>{t('common.signInFirst')}</p>}</RequireSignIn>
    </section>
  )
}
