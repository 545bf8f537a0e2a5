import type { Logger } from '@timedeal/platform'
import { changeRows, selectRows } from '@timedeal/platform'
import { createTransport } from 'nodemailer'
import type { Sequelize } from 'sequelize'
import type { MailMessage } from '../domain/messages.ts'

export interface Mailer {
  send(message: MailMessage): Promise<void>
  close(): Promise<void>
}

/** Production mail: SMTP through nodemailer (`SMTP_URL`, e.g. `smtps://user:pass@smtp.example.com`). */
export function createSmtpMailer(options: { url: string; from: string }): Mailer {
  const transport = createTransport(options.url)
  return {
    async send(message) {
      await transport.sendMail({ from: options.from, to: message.to, subject: message.subject, text: message.text })
    },
    async close() {
      transport.close()
    },
  }
}

export interface SunkMail extends MailMessage {
  readonly id: number
  readonly sentAt: string
}

/**
 * Development mail: nothing leaves the machine; every message lands in the `dev_mail` table,
 * where a developer (through `GET /internal/dev/mail`) and the tests read it.
 */
export class MailSink implements Mailer {
  readonly #db: Sequelize
  readonly #logger: Logger
  readonly #clock: () => Date

  constructor(db: Sequelize, logger: Logger, clock: () => Date) {
    this.#db = db
    this.#logger = logger
    this.#clock = clock
  }

  async send(message: MailMessage): Promise<void> {
    await changeRows(
      this.#db,
      'INSERT INTO dev_mail (to_address, subject, body, created_at) VALUES (:to, :subject, :text, :now)',
      { ...message, now: this.#clock() },
    )
    this.#logger.info({ to: message.to, subject: message.subject }, 'mail kept in the development sink')
  }

  /** The messages sent to `to`, newest first. */
  async messagesTo(to: string, limit = 20): Promise<SunkMail[]> {
    const rows = await selectRows<{ id: number; to_address: string; subject: string; body: string; created_at: Date }>(
      this.#db,
      'SELECT id, to_address, subject, body, created_at FROM dev_mail WHERE to_address = :to ORDER BY id DESC LIMIT :limit',
      { to, limit },
    )
    return rows.map((row) => ({
      id: Number(row.id),
      to: row.to_address,
      subject: row.subject,
      text: row.body,
      sentAt: row.created_at.toISOString(),
    }))
  }

  async close(): Promise<void> {}
}
