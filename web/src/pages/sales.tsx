import { useState } from 'react'
import { Link } from 'react-router'
import { ApiProblem, api, type Goods, type Page } from '../api.ts'
import { formatPrice, useI18n } from '../i18n.tsx'
import { useNow, usePolling } from '../session.ts'
import { Countdown, ProblemMessage, StateBadge } from './parts.tsx'

/** Live stock is polled at most this often; each poll revalidates (conditional when the server gives validators). */
export const STOCK_POLL_MS = 2000

export function StockMeter({ goods }: { goods: Goods }) {
  const { t } = useI18n()
  return (
    <span className="stock">
      <meter min={0} max={goods.initialStock} value={goods.stockAvailable} aria-hidden="true" />
      {t('sales.left', { count: goods.stockAvailable, total: goods.initialStock })}
    </span>
  )
}

export function SalesPage() {
  const { t, language } = useI18n()
  const now = useNow()
  const [goods, setGoods] = useState<Goods[]>()
  const [problem, setProblem] = useState<ApiProblem>()

  usePolling(
    () => {
      api<Page<Goods>>('/api/goods?limit=50')
        .then((page) => {
          setGoods(page.items)
          setProblem(undefined)
        })
        .catch((error: unknown) => setProblem(error instanceof ApiProblem ? error : undefined))
    },
    STOCK_POLL_MS,
    'catalog',
  )

  return (
    <section>
      <h1>{t('sales.title')}</h1>
      <ProblemMessage problem={problem} />
      {goods === undefined && !problem && <p>{t('common.loading')}</p>}
      {goods?.length === 0 && <p>{t('sales.empty')}</p>}
      <ul className="cards">
        {goods?.map((one) => (
          <li key={one.id} className="card" data-goods-id={one.id}>
            <h2>
              <Link to={`/goods/${one.id}`}>{one.name}</Link>
            </h2>
            <p className="price">{t('sales.price', { price: formatPrice(one.price, language) })}</p>
            <p>
              <StateBadge state={one.saleState} /> <Countdown goods={one} now={now} />
            </p>
            <StockMeter goods={one} />
          </li>
        ))}
      </ul>
    </section>
  )
}
