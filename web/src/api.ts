/**
 * Every call to the platform goes through here: the access token lives in memory only (never in
 * storage a script could read), and the refresh token is the httpOnly cookie user-service sets,
 * so a reload or an expired access token is one `POST /api/auth/refresh` away.
 */

export type Role = 'BUYER' | 'SELLER'

export interface User {
  readonly id: string
  readonly email: string
  readonly name: string
  readonly role: Role
}

interface SignedIn {
  readonly accessToken: string
  readonly expiresIn: number
  readonly user: User
}

/** An application/problem+json answer, or a network failure (status 0). */
export class ApiProblem extends Error {
  readonly status: number
  readonly code: string
  /** Seconds the server asked to wait before trying again (`Retry-After`), when it did. */
  readonly retryAfterSeconds: number | undefined
  readonly body: Record<string, unknown>

  constructor(
    status: number,
    code: string,
    detail: string,
    retryAfterSeconds: number | undefined,
    body: Record<string, unknown> = {},
  ) {
    super(detail)
    this.status = status
    this.code = code
    this.retryAfterSeconds = retryAfterSeconds
    this.body = body
  }
}

type Listener = (user: User | undefined) => void

let accessToken: string | undefined
let currentUser: User | undefined
let refreshing: Promise<boolean> | undefined
const listeners = new Set<Listener>()

export const session = {
  get user(): User | undefined {
    return currentUser
  },
  get token(): string | undefined {
    return accessToken
  },
  subscribe(listener: Listener): () => void {
    listeners.add(listener)
    return () => listeners.delete(listener)
  },
}

function signedIn(answer: SignedIn | undefined): void {
  accessToken = answer?.accessToken
  currentUser = answer?.user
  for (const listener of listeners) listener(currentUser)
}

function retryAfterOf(response: Response): number | undefined {
  const header = response.headers.get('retry-after')
  if (header === null) return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(0, seconds)
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000))
}

async function problemOf(response: Response): Promise<ApiProblem> {
  let body: Record<string, unknown> = {}
  try {
    body = (await response.json()) as Record<string, unknown>
  } catch {
    // not JSON: the status says enough
  }
  const code = typeof body.code === 'string' ? body.code : `HTTP_${response.status}`
  const detail = typeof body.detail === 'string' ? body.detail : response.statusText
  return new ApiProblem(response.status, code, detail, retryAfterOf(response), body)
}

export interface RequestOptions {
  readonly method?: string
  readonly body?: unknown
  readonly headers?: Record<string, string>
  readonly signal?: AbortSignal
}

async function send(path: string, options: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers }
  if (accessToken) headers.authorization = `Bearer ${accessToken}`
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  try {
    return await fetch(path, {
      method: options.method ?? 'GET',
      headers,
      body: options.body === undefined ? null : JSON.stringify(options.body),
      credentials: 'same-origin',
      // Revalidate every time: the browser sends If-None-Match / If-Modified-Since when it can.
      cache: 'no-cache',
      ...(options.signal ? { signal: options.signal } : {}),
    })
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error
    throw new ApiProblem(0, 'NETWORK', 'the server could not be reached', undefined)
  }
}

/** One call; a 401 with a token in hand refreshes once and tries again. */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  let response = await send(path, options)
  if (response.status === 401 && accessToken && (await refresh())) response = await send(path, options)
  if (!response.ok) throw await problemOf(response)
  if (response.status === 204) return undefined as T
  return (await response.json()) as T
}

/** A new access token from the refresh cookie; false (signed out) when there is no valid one. */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const response = await fetch('/api/auth/refresh', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { accept: 'application/json' },
      })
      if (!response.ok) {
        signedIn(undefined)
        return false
      }
      signedIn((await response.json()) as SignedIn)
      return true
    } catch {
      return false
    } finally {
      refreshing = undefined
    }
  })()
  return refreshing
}

export async function signIn(email: string, password: string): Promise<User> {
  const answer = await api<SignedIn>('/api/auth/login', {
    method: 'POST',
    body: { email, password, refreshTokenTransport: 'cookie' },
  })
  signedIn(answer)
  return answer.user
}

export async function signOut(): Promise<void> {
  try {
    await fetch('/api/auth/logout', { method: 'POST', credentials: 'same-origin' })
  } finally {
    signedIn(undefined)
  }
}

/** A key for one click of Buy; `randomUUID` needs a secure context, which plain-HTTP LAN addresses are not. */
export function newIdempotencyKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')
}

export interface Goods {
  readonly id: string
  readonly sellerId: string
  readonly name: string
  readonly description: string
  readonly price: number
  readonly initialStock: number
  readonly stockAvailable: number
  readonly saleState: 'UPCOMING' | 'OPEN' | 'SOLD_OUT' | 'CLOSED'
  readonly saleStartsAt: string
  readonly saleEndsAt: string
  readonly purchaseLimit: number | null
}

export interface Order {
  readonly id: string
  readonly goodsId: string
  readonly quantity: number
  readonly totalAmount: number
  readonly state: string
  readonly placedAt: string
  readonly failureReason: string | null
}

export interface Page<T> {
  readonly items: T[]
  readonly nextCursor: string | null
}
