import { type FormEvent, useState } from 'react'
import { Link, useLocation, useNavigate, useSearchParams } from 'react-router'
import { ApiProblem, api, signIn } from '../api.ts'
import { useI18n } from '../i18n.tsx'
import { ProblemMessage } from './parts.tsx'

/** Runs a form's submit, holding its busy state and the problem it ran into. */
function useSubmit() {
  const [busy, setBusy] = useState(false)
  const [problem, setProblem] = useState<ApiProblem>()
  const run = (work: () => Promise<void>) => async (event: FormEvent) => {
    event.preventDefault()
    setBusy(true)
    setProblem(undefined)
    try {
      await work()
    } catch (error) {
      setProblem(error instanceof ApiProblem ? error : new ApiProblem(0, 'UNEXPECTED', String(error), undefined))
    } finally {
      setBusy(false)
    }
  }
  return { busy, problem, run }
}

type FieldProps = { value: string; onChange: (value: string) => void }

function EmailField({ value, onChange }: FieldProps) {
  const { t } = useI18n()
  return (
    <label>
      {t('form.email')}
      <input type="email" required autoComplete="email" value={value} onChange={(e) => onChange(e.target.value)} />
    </label>
  )
}

function CurrentPasswordField({ value, onChange }: FieldProps) {
  const { t } = useI18n()
  return (
    <label>
      {t('form.password')}
      <input
        type="password"
        required
        autoComplete="current-password"
        value={value}
        onChange={(e) => onChange(e.target.value)}
      />
    </label>
  )
}

/** The problem the last submit ran into, above the button that submits again. */
function SubmitRow({ problem, busy, label }: { problem: ApiProblem | undefined; busy: boolean; label: string }) {
  return (
    <>
      <ProblemMessage problem={problem} />
      <button type="submit" disabled={busy}>
        {label}
      </button>
    </>
  )
}

export function SignUpPage() {
  const { t } = useI18n()
  const navigate = useNavigate()
  const { busy, problem, run } = useSubmit()
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [name, setName] = useState('')
  const [role, setRole] = useState<'BUYER' | 'SELLER'>('BUYER')

  const submit = run(async () => {
    await api('/api/users', { method: 'POST', body: { email, password, name, role } })
    // The password travels to the verify page in memory only (router state), never in the URL.
    navigate(`/verify?email=${encodeURIComponent(email)}`, { state: { password } })
  })

  return (
    <section className="narrow">
      <h1>{t('signUp.title')}</h1>
      <form onSubmit={submit} aria-busy={busy}>
        <EmailField value={email} onChange={setEmail} />
        <label>
          {t('form.name')}
          <input required autoComplete="name" maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label>
          {t('form.password')}
          <input
            type="password"
            required
            minLength={8}
            autoComplete="new-password"
            aria-describedby="password-hint"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          <small id="password-hint">{t('signUp.hint')}</small>
        </label>
        <fieldset>
          <legend>{t('form.role')}</legend>
          {(['BUYER', 'SELLER'] as const).map((option) => (
            <label key={option} className="inline">
              <input type="radio" name="role" checked={role === option} onChange={() => setRole(option)} />
              {t(`form.role.${option}`)}
            </label>
          ))}
        </fieldset>
        <SubmitRow problem={problem} busy={busy} label={t('signUp.submit')} />
      </form>
    </section>
  )
}

export function VerifyPage() {
  const { t } = useI18n()
  const navigate = useNavigate()
  const [params] = useSearchParams()
  const location = useLocation()
  const { busy, problem, run } = useSubmit()
  const [email, setEmail] = useState(params.get('email') ?? '')
  const [password, setPassword] = useState((location.state as { password?: string } | null)?.password ?? '')
  const [code, setCode] = useState('')

  const submit = run(async () => {
    await api('/api/users/verify', { method: 'POST', body: { email, password, code } })
    await signIn(email, password)
    navigate('/')
  })

  return (
    <section className="narrow">
      <h1>{t('verify.title')}</h1>
      <p>{t('verify.lead', { email: email || '…' })}</p>
      <form onSubmit={submit} aria-busy={busy}>
        <EmailField value={email} onChange={setEmail} />
        <label>
          {t('form.code')}
          <input
            required
            inputMode="numeric"
            autoComplete="one-time-code"
            pattern="\d{6}"
            maxLength={6}
            value={code}
            onChange={(e) => setCode(e.target.value.trim())}
          />
        </label>
        <CurrentPasswordField value={password} onChange={setPassword} />
        <SubmitRow problem={problem} busy={busy} label={t('verify.submit')} />
      </form>
    </section>
  )
}

export function SignInPage() {
  const { t } = useI18n()
  const navigate = useNavigate()
  const [params] = useSearchParams()
  const { busy, problem, run } = useSubmit()
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')

  const submit = run(async () => {
    await signIn(email, password)
    navigate(params.get('next') ?? '/')
  })

  return (
    <section className="narrow">
      <h1>{t('signIn.title')}</h1>
      <form onSubmit={submit} aria-busy={busy}>
        <EmailField value={email} onChange={setEmail} />
        <CurrentPasswordField value={password} onChange={setPassword} />
        <SubmitRow problem={problem} busy={busy} label={t('signIn.submit')} />
      </form>
      <p>
        {t('signIn.noAccount')} <Link to="/signup">{t('nav.signUp')}</Link>
      </p>
    </section>
  )
}
