import { createRoute } from '@hono/zod-openapi'
import {
  AUTH_PROBLEMS,
  type AuthedEnv,
  authenticate,
  createRoutes,
  forwardedHeaders,
  jsonResponse,
  problemResponses,
  type Routes,
  type TokenVerifier,
} from '@timedeal/platform'
import { z } from 'zod'
import { type MyPageFlow, myPageSchemas, REMOTE_PARTS } from '../flows/mypage.ts'
import { ACCOUNT_GONE, profile } from './profile.ts'

const missing = 'null when the part is degraded'

const myPage = z.object({
  profile,
  orders: z
    .array(myPageSchemas.orderSummary)
    .nullable()
    .meta({ description: `The newest orders (a buyer's own, or of a seller's goods), newest first; ${missing}.` }),
  goods: z
    .array(myPageSchemas.goodsSummary)
    .nullable()
    .optional()
    .meta({ description: `Sellers only: their newest goods with live stock; ${missing}.` }),
  wishlist: z
    .array(myPageSchemas.wishlistEntry)
    .nullable()
    .optional()
    .meta({ description: `Buyers only: the newest wishlist entries; ${missing}.` }),
  unreadNotifications: z
    .number()
    .int()
    .nullable()
    .meta({ description: `How many chat notifications are unread; ${missing}.` }),
  degraded: z
    .array(z.enum(REMOTE_PARTS))
    .meta({ description: 'The parts missing from this answer (their service failed, was too slow, or is paused).' }),
  degradedReasons: z
    .partialRecord(z.enum(REMOTE_PARTS), z.string())
    .meta({ description: 'Why each degraded part is missing, in a few words.' }),
})

const showMyPage = createRoute({
  method: 'get',
  path: '/',
  summary:
    "The caller's page: profile, recent orders, a seller's goods or a buyer's wishlist, unread chat notifications",
  description:
    'Always 200 once the caller is known: a part whose service fails, answers too slowly or is paused ' +
    'by its circuit breaker is null and named in `degraded`.',
  responses: {
    200: jsonResponse(myPage, 'the page; `degraded` lists the parts that are missing'),
    ...problemResponses(AUTH_PROBLEMS, ACCOUNT_GONE),
  },
})

/** `/api/users/me/mypage`: the caller's token goes on to each service, which checks it again. */
export function myPageRoutes(flow: MyPageFlow, verifier: TokenVerifier): Routes<AuthedEnv> {
  const routes = createRoutes<AuthedEnv>()
  routes.use(authenticate(verifier))
  return routes.openapi(showMyPage, async (c) =>
    c.json(await flow.view({ caller: c.var.caller, headers: forwardedHeaders(c) }), 200),
  )
}
