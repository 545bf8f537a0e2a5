import {
  clientAddressOf,
  createRoutes,
  type Routes,
  requireServiceCredential,
  type TokenVerifier,
} from '@timedeal/platform'
import type { Context } from 'hono'
import type { MailSink } from '../adapters/mailer.ts'
import type { RotationResult } from '../adapters/signing-keys.ts'
import type { MyPageFlow } from '../flows/mypage.ts'
import type { Profiles } from '../flows/profile.ts'
import type { Registration } from '../flows/registration.ts'
import type { Sessions } from '../flows/sessions.ts'
import { authRoutes } from './auth.ts'
import { devMailRoutes } from './dev-mail.ts'
import { jwksRoutes } from './jwks.ts'
import { meRoutes } from './me.ts'
import { myPageRoutes } from './mypage.ts'
import { signingKeyRoutes } from './signing-keys.ts'
import { userRoutes } from './users.ts'

export interface PublicRoutesDeps {
  readonly registration: Registration
  readonly sessions: Sessions
  readonly profiles: Profiles
  readonly myPage: MyPageFlow
  readonly jwks: () => Promise<{ keys: Record<string, unknown>[] }>
  /** Checks access tokens; user-service resolves its own keys instead of fetching its JWKS. */
  readonly verifier: TokenVerifier
  /** Take the client address from the last `X-Forwarded-For` hop (behind the gateway), not the socket. */
  readonly trustProxy: boolean
  readonly refreshTtlSeconds: number
}

export interface InternalRoutesDeps {
  readonly rotateSigningKey: () => Promise<RotationResult>
  readonly internalSecret: string
  /**
   * Present only in development (TIMEDEAL_ENV=development): mounts `GET /internal/dev/mail`,
   * which reads the sink when MAILER=sink.
   */
  readonly developmentMail?: { readonly sink: MailSink | undefined }
}

/**
 * The public routes of user-service, one resource per file. Health, readiness and metrics come
 * from the platform app this is mounted on.
 */
export function publicRoutes(deps: PublicRoutesDeps): Routes {
  const clientAddress = (c: Context) => clientAddressOf(c, deps.trustProxy)
  return (
    createRoutes()
      .route('/', jwksRoutes(deps.jwks))
      // Before `/api/users/me`, so the token is checked once: by the page's own middleware.
      .route('/api/users/me/mypage', myPageRoutes(deps.myPage, deps.verifier))
      .route('/api/users/me', meRoutes(deps.profiles, deps.verifier, clientAddress))
      .route('/api/users', userRoutes(deps.registration, clientAddress))
      .route(
        '/api/auth',
        authRoutes({ sessions: deps.sessions, clientAddress, refreshTtlSeconds: deps.refreshTtlSeconds }),
      )
  )
}

/**
 * The routes other services and developers call on the internal listener (mounted under
 * `/internal`), each behind the service credential.
 */
export function internalRoutes(deps: InternalRoutesDeps): Routes {
  const internal = createRoutes()
  internal.use(requireServiceCredential(deps.internalSecret))
  internal.route('/signing-keys', signingKeyRoutes(deps.rotateSigningKey))
  const mail = deps.developmentMail
  return mail ? internal.route('/dev/mail', devMailRoutes(mail.sink)) : internal
}
