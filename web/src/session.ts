import { useEffect, useRef, useState } from 'react'
import { refresh, session, type User } from './api.ts'

/** The signed-in user (undefined when signed out), and whether the first refresh has settled. */
export function useSession(): { user: User | undefined; ready: boolean } {
  const [user, setUser] = useState(session.user)
  const [ready, setReady] = useState(restored)
  useEffect(() => {
    const unsubscribe = session.subscribe(setUser)
    void restoring.then(() => setReady(true))
    return unsubscribe
  }, [])
  return { user, ready }
}

// A reload signs back in from the refresh cookie, once, before the pages ask who is signed in.
let restored = false
const restoring = refresh().finally(() => {
  restored = true
})

/**
 * Calls `tick` every `ms` while the page is visible, and at once when it becomes visible again;
 * a new `key` starts over.
 */
export function usePolling(tick: () => void, ms: number, key: string): void {
  const latest = useRef(tick)
  latest.current = tick
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new key starts the polling over
  useEffect(() => {
    let timer: ReturnType<typeof setInterval> | undefined
    const run = () => latest.current()
    const start = () => {
      run()
      timer = setInterval(run, ms)
    }
    const onVisibility = () => {
      clearInterval(timer)
      if (document.visibilityState === 'visible') start()
    }
    if (document.visibilityState === 'visible') start()
    document.addEventListener('visibilitychange', onVisibility)
    return () => {
      clearInterval(timer)
      document.removeEventListener('visibilitychange', onVisibility)
    }
  }, [ms, key])
}

/** The current time, re-rendered every second (for countdowns). */
export function useNow(): number {
  const [now, setNow] = useState(Date.now)
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000)
    return () => clearInterval(timer)
  }, [])
  return now
}
