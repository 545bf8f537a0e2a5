import { createRoute } from '@hono/zod-openapi'
import {
  createRoutes,
  jsonResponse,
  notFound,
  PARAMETER_PROBLEMS,
  problemResponses,
  type Routes,
  SERVICE_CREDENTIAL_PROBLEMS,
} from '@timedeal/platform'
import { z } from 'zod'
import type { MailSink } from '../adapters/mailer.ts'
import { email } from './inputs.ts'

const sunkMail = z.object({ id: z.number(), to: z.string(), subject: z.string(), text: z.string(), sentAt: z.string() })

const listMail = createRoute({
  method: 'get',
  path: '/',
  summary: 'The newest mails the development sink holds for one address',
  request: { query: z.object({ to: email }) },
  responses: {
    200: jsonResponse(z.object({ messages: z.array(sunkMail) }), 'newest first'),
    ...problemResponses(PARAMETER_PROBLEMS, SERVICE_CREDENTIAL_PROBLEMS, { 404: ['MAIL_SINK_DISABLED'] }),
  },
})

/** Internal `/dev/mail` (development only): the mails the sink holds for one address. */
export function devMailRoutes(sink: MailSink | undefined): Routes {
  return createRoutes().openapi(listMail, async (c) => {
    if (!sink) throw notFound('MAIL_SINK_DISABLED', 'the development mail sink is off (MAILER=smtp)')
    return c.json({ messages: await sink.messagesTo(c.req.valid('query').to) }, 200)
  })
}
