import { type AppEnv, Problem, validate } from '@timedeal/platform'
import { Hono } from 'hono'
import { z } from 'zod'
import type { MailSink } from '../adapters/mailer.ts'
import { email } from './inputs.ts'

const mailQuery = z.object({ to: email })

/** Internal `/dev/mail` (development only): the mails the sink holds for one address. */
export function devMailRoutes(sink: MailSink | undefined): Hono<AppEnv> {
  return new Hono<AppEnv>().get('/', async (c) => {
    if (!sink) {
      throw new Problem({
        status: 404,
        code: 'MAIL_SINK_DISABLED',
        detail: 'the development mail sink is off (MAILER=smtp)',
      })
    }
    const { to } = validate(mailQuery, c.req.query(), 'query')
    return c.json({ messages: await sink.messagesTo(to) })
  })
}
