/**
 * The framework ceiling of `make bench-stock`: a bare Hono app on @hono/node-server, alone in its
 * process like goods-service. Its POST route parses a small JSON body (as the reservation route
 * does) and answers a fixed JSON body with 201; no auth, validation, Redis, logging or metrics.
 * Listens on HTTP_PORT (127.0.0.1); `/readyz` answers 200 once it does.
 */
import { serve } from '@hono/node-server'
import { Hono } from 'hono'

const app = new Hono()
const answer = { status: 'RESERVED' }
app.get('/readyz', (context) => context.json({ ready: true }))
app.post('/internal/reservations', async (context) => {
  await context.req.json()
  return context.json(answer, 201)
})

serve({ fetch: app.fetch, hostname: '127.0.0.1', port: Number(process.env.HTTP_PORT ?? 0) })
