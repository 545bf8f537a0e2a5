import type { ReactNode } from 'react'
import { Link, useLocation } from 'react-router'
import type { ApiProblem, Goods } from '../api.ts'
import { formatDuration, useI18n } from '../i18n.tsx'
import { useSession } from '../session.ts'

/** A problem the server answered, read out at once to screen readers. */
export function ProblemMessage({ problem }: { problem: ApiProblem | undefined }) {
  const { t } = useI18n()
  if (!problem) return null
  return (
    <p role="alert" className="problem">
      {t('common.error', { detail: problem.message || problem.code })}
    </p>
  )
}

export function StateBadge({ state }: { state: Goods['saleState'] }) {
  const { t } = useI18n()
  return <span className={`state state-${state.toLowerCase()}`}>{t(`state.${state}`)}</span>
}

/** "Opens in 00:01:02" before the sale, "Ends in …" during it. */
export function Countdown({ goods, now }: { goods: Goods; now: number }) {
  const { t } = useI18n()
  const starts = Date.parse(goods.saleStartsAt)
  const ends = Date.parse(goods.saleEndsAt)
  if (now < starts)
    return <span className="countdown">{t('sales.opensIn', { time: formatDuration(starts - now, t) })}</span>
  if (now < ends && goods.saleState !== 'CLOSED')
    return <span className="countdown">{t('sales.endsIn', { time: formatDuration(ends - now, t) })}</span>
  return null
}

/** The page for signed-in users only; others get a link to sign in and come back. */
export function RequireSignIn({ children }: { children: ReactNode }) {
  const { t } = useI18n()
  const { user, ready } = useSession()
  const location = useLocation()
  if (!ready) return <p>{t('common.loading')}</p>
  if (!user)
    return (
      <p>
        <Link to={`/signin?next=${encodeURIComponent(location.pathname)}`}>{t('common.signInFirst')}</Link>
      </p>
    )
  return <>{children}</>
}
