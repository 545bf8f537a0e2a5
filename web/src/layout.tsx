import { useEffect, useRef } from 'react'
import { NavLink, Outlet, useLocation, useNavigate } from 'react-router'
import { signOut } from './api.ts'
import { useChat } from './chat-context.tsx'
import { type Language, useI18n } from './i18n.tsx'
import { useSession } from './session.ts'

export function Layout() {
  const { t, language, setLanguage } = useI18n()
  const { user } = useSession()
  const { totalUnread, lastNotice } = useChat()
  const navigate = useNavigate()
  const location = useLocation()
  const main = useRef<HTMLElement>(null)

  // A route change moves focus to the new page, as a full page load would, for keyboard and screen reader users.
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs on navigation only
  useEffect(() => {
    main.current?.focus({ preventScroll: true })
  }, [location.pathname])

  return (
    <>
      <a className="skip" href="#main">
        {t('app.skip')}
      </a>
      <header className="top">
        <NavLink to="/" className="brand">
          {t('app.title')}
        </NavLink>
        <nav aria-label="main">
          <NavLink to="/">{t('nav.sales')}</NavLink>
          {user && <NavLink to="/my">{t('nav.my')}</NavLink>}
          {user?.role === 'SELLER' && <NavLink to="/seller">{t('nav.seller')}</NavLink>}
          {user && (
            <NavLink to="/chat">
              {t('nav.chat')}
              {totalUnread > 0 && (
                <span className="badge" data-testid="unread-total">
                  <span className="visually-hidden">, </span>
                  {t('chat.unread', { count: totalUnread })}
                </span>
              )}
            </NavLink>
          )}
          {!user && <NavLink to="/signin">{t('nav.signIn')}</NavLink>}
          {!user && <NavLink to="/signup">{t('nav.signUp')}</NavLink>}
          {user && (
            <button
              type="button"
              className="link"
              onClick={() => void signOut().then(() => navigate('/'))}
              title={user.email}
            >
              {t('nav.signOut')}
            </button>
          )}
        </nav>
        <label className="language">
          <span className="visually-hidden">{t('nav.language')}</span>
          <select value={language} onChange={(event) => setLanguage(event.target.value as Language)}>
            <option value="ko">한국어</option>
            <option value="en">English</option>
          </select>
        </label>
      </header>
      <p className="visually-hidden" aria-live="polite">
        {lastNotice ? t('chat.notification') : ''}
      </p>
      <main id="main" ref={main} tabIndex={-1}>
        <Outlet />
      </main>
    </>
  )
}
