/** The mails user-service sends. Plain text: they carry a code or a notice, nothing to render. */
export interface MailMessage {
  readonly to: string
  readonly subject: string
  readonly text: string
}

export function verificationMail(to: string, name: string, code: string, validMinutes: number): MailMessage {
  return {
    to,
    subject: `Your Timedeal verification code: ${code}`,
    text: [
      `Hello ${name},`,
      '',
      `your Timedeal verification code is ${code}. It is valid for ${validMinutes} minutes.`,
      '',
      'If you did not sign up for Timedeal, ignore this mail; no account is opened without the code.',
    ].join('\n'),
  }
}

/** Sent instead of a code when someone signs up with an address that already has an account. */
export function alreadyRegisteredMail(to: string, name: string): MailMessage {
  return {
    to,
    subject: 'Someone tried to sign up to Timedeal with your address',
    text: [
      `Hello ${name},`,
      '',
      'someone just tried to open a Timedeal account with this address, which already has one.',
      'If it was you, sign in with your password instead. If not, nothing changed and you can ignore this mail.',
    ].join('\n'),
  }
}
