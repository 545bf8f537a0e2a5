import { createTokenVerifier, type Logger, type Redis, type Routes } from '@timedeal/platform'
import type { Registry } from 'prom-client'
import type { Sequelize } from 'sequelize'
import { createAccessTokenIssuer } from './adapters/access-tokens.ts'
import { AccountStore } from './adapters/account-store.ts'
import { DataCipher } from './adapters/data-cipher.ts'
import { createDownstream } from './adapters/downstream.ts'
import { createSmtpMailer, type Mailer, MailSink } from './adapters/mailer.ts'
import { createArgon2Hasher, type PasswordHasher } from './adapters/password-hasher.ts'
import { createRedisRateLimiter } from './adapters/rate-limiter.ts'
import { SessionStore } from './adapters/session-store.ts'
import { SignUpStore } from './adapters/sign-up-store.ts'
import { SigningKeyStore } from './adapters/signing-keys.ts'
import { PENDING_SIGN_UP_RETENTION_MS } from './domain/verification.ts'
import { createMyPage } from './flows/mypage.ts'
import { createProfiles } from './flows/profile.ts'
import { createRegistration } from './flows/registration.ts'
import { createSessions } from './flows/sessions.ts'
import { internalRoutes, publicRoutes } from './http/index.ts'
import { BREAKER_STATE_VALUES, createUserMetrics, type UserMetrics } from './metrics.ts'
import type { Settings } from './settings.ts'

export interface UserServiceDeps {
  readonly settings: Settings
  readonly sequelize: Sequelize
  readonly redis: Redis
  readonly logger: Logger
  readonly metrics: Registry
  readonly clock?: () => Date
  readonly hasher?: PasswordHasher
}

export interface UserService {
  /** For the public listener. */
  readonly publicRoutes: Routes
  /** For the internal listener, mounted under `/internal`. */
  readonly internalRoutes: Routes
  readonly accounts: AccountStore
  readonly signingKeys: SigningKeyStore
  readonly cipher: DataCipher
  readonly hasher: PasswordHasher
  readonly mailSink: MailSink | undefined
  /** One pass of the key schedule and housekeeping (the timer runs it every minute). */
  maintain(): Promise<void>
  /** Stops the schedule and closes the mailer. */
  stop(): Promise<void>
}

const MAINTENANCE_INTERVAL_MS = 60_000
/** Expired refresh tokens stay a day, so a late reuse still reads as "expired" rather than "unknown". */
const EXPIRED_TOKEN_GRACE_MS = 24 * 60 * 60_000

/** The account store and password hasher the service uses, for `main.ts seed`. */
export function createSeedAccounts(settings: Settings, sequelize: Sequelize) {
  return { accounts: new AccountStore(sequelize, new DataCipher(settings.DATA_KEYS)), hasher: createArgon2Hasher() }
}

/** The clients of the services my page reads, each behind policies of its own. */
function myPageDownstreams(settings: Settings, metrics: UserMetrics, logger: Logger) {
  const observer = {
    callEnded(dependency: string, outcome: string, seconds: number) {
      metrics.myPageCalls.inc({ dependency, outcome })
      metrics.myPageCallSeconds.observe({ dependency }, seconds)
    },
  }
  const downstream = (name: string, baseUrl: string) => {
    metrics.myPageBreakerState.set({ dependency: name }, BREAKER_STATE_VALUES.closed)
    return createDownstream({
      name,
      baseUrl,
      timeoutMs: settings.MYPAGE_PART_TIMEOUT_MS,
      retries: settings.MYPAGE_RETRIES,
      retryBackoffMs: settings.MYPAGE_RETRY_BACKOFF_MS,
      maxConcurrentCalls: settings.MYPAGE_MAX_CONCURRENT_CALLS,
      maxQueuedCalls: settings.MYPAGE_MAX_QUEUED_CALLS,
      failureThreshold: settings.MYPAGE_BREAKER_FAILURES,
      halfOpenAfterMs: settings.MYPAGE_BREAKER_HALF_OPEN_MS,
      observer,
      onBreakerChange: (state) => {
        metrics.myPageBreakerState.set({ dependency: name }, BREAKER_STATE_VALUES[state])
        if (state === 'open') logger.warn({ dependency: name }, 'my page stops calling a failing service for a moment')
        if (state === 'closed') logger.info({ dependency: name }, 'my page calls a recovered service again')
      },
    })
  }
  return {
    orders: downstream('order-service', settings.ORDER_URL),
    goods: downstream('goods-service', settings.GOODS_URL),
    chat: downstream('chat-service', settings.CHAT_URL),
  }
}

/**
 * The composition root: builds user-service from connected clients (the stores, the flows and
 * the routes) and starts its key schedule. `main.ts` and the tests both build it this way, so
 * the tests run exactly what production runs.
 */
export async function startUserService(deps: UserServiceDeps): Promise<UserService> {
  const { settings, sequelize, logger } = deps
  const clock = deps.clock ?? (() => new Date())
  const metrics = createUserMetrics(deps.metrics)
  const cipher = new DataCipher(settings.DATA_KEYS)
  const hasher = deps.hasher ?? createArgon2Hasher()
  const accounts = new AccountStore(sequelize, cipher)
  const signUps = new SignUpStore(sequelize)
  const sessionStore = new SessionStore(sequelize)
  const limiter = createRedisRateLimiter(deps.redis, settings.RATE_LIMIT_KEY_PREFIX)
  const signingKeys = new SigningKeyStore({
    db: sequelize,
    cipher,
    clock,
    logger,
    policy: {
      lifetimeMs: settings.SIGNING_KEY_LIFETIME_HOURS * 60 * 60_000,
      publishAheadMs: settings.SIGNING_KEY_PUBLISH_AHEAD_SECONDS * 1000,
      accessTokenTtlMs: settings.ACCESS_TOKEN_TTL_SECONDS * 1000,
    },
  })
  const mailSink = settings.MAILER === 'sink' ? new MailSink(sequelize, logger, clock) : undefined
  const mailer: Mailer = mailSink ?? createSmtpMailer({ url: settings.SMTP_URL ?? '', from: settings.MAIL_FROM })
  const tokens = createAccessTokenIssuer({
    keys: signingKeys,
    issuer: settings.JWT_ISSUER,
    audience: settings.JWT_AUDIENCE,
    ttlSeconds: settings.ACCESS_TOKEN_TTL_SECONDS,
    clock,
  })
  const loginLimits = {
    perAccount: settings.LOGIN_LIMIT_PER_ACCOUNT,
    perAddress: settings.LOGIN_LIMIT_PER_ADDRESS,
    windowSeconds: settings.LOGIN_LIMIT_WINDOW_SECONDS,
  }

  const registration = createRegistration({
    accounts,
    signUps,
    hasher,
    cipher,
    mailer,
    limiter,
    clock,
    metrics,
    logger,
    limits: {
      perAccount: settings.SIGNUP_LIMIT_PER_EMAIL,
      perAddress: settings.SIGNUP_LIMIT_PER_ADDRESS,
      windowSeconds: settings.SIGNUP_LIMIT_WINDOW_SECONDS,
    },
  })
  const sessions = createSessions({
    accounts,
    signUps,
    sessions: sessionStore,
    hasher,
    tokens,
    limiter,
    limits: loginLimits,
    refreshTtlSeconds: settings.REFRESH_TOKEN_TTL_SECONDS,
    clock,
    metrics,
    logger,
  })
  const profiles = createProfiles({ accounts, sessions: sessionStore, hasher, limiter, limits: loginLimits, clock })
  const myPage = createMyPage({
    profile: profiles.view,
    ...myPageDownstreams(settings, metrics, logger),
    listLimit: settings.MYPAGE_LIST_LIMIT,
    sequential: settings.MYPAGE_SEQUENTIAL,
  })

  async function maintain(): Promise<void> {
    if (await signingKeys.rotateIfDue()) metrics.keyRotations.inc({ trigger: 'schedule' })
    await signingKeys.prune()
    await sessionStore.pruneExpired(clock(), EXPIRED_TOKEN_GRACE_MS)
    await signUps.pruneOlderThan(new Date(clock().getTime() - PENDING_SIGN_UP_RETENTION_MS))
  }
  // The first key exists before the first request; later passes run on the timer.
  await maintain()
  const timer = setInterval(() => {
    maintain().catch((error: unknown) => logger.error({ err: error }, 'signing-key maintenance failed'))
  }, MAINTENANCE_INTERVAL_MS)
  timer.unref()

  const routes = publicRoutes({
    registration,
    sessions,
    profiles,
    myPage,
    jwks: () => signingKeys.jwks(),
    verifier: createTokenVerifier({
      keys: signingKeys.verificationKey,
      issuer: settings.JWT_ISSUER,
      audience: settings.JWT_AUDIENCE,
    }),
    trustProxy: settings.TRUST_PROXY,
    refreshTtlSeconds: settings.REFRESH_TOKEN_TTL_SECONDS,
  })
  const internal = internalRoutes({
    rotateSigningKey: async () => {
      const rotated = await signingKeys.rotate()
      metrics.keyRotations.inc({ trigger: 'on_demand' })
      return rotated
    },
    internalSecret: settings.INTERNAL_API_SECRET,
    ...(settings.TIMEDEAL_ENV === 'development' ? { developmentMail: { sink: mailSink } } : {}),
  })

  return {
    publicRoutes: routes,
    internalRoutes: internal,
    accounts,
    signingKeys,
    cipher,
    hasher,
    mailSink,
    maintain,
    async stop() {
      clearInterval(timer)
      await mailer.close()
    },
  }
}
