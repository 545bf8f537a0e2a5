import { type FormEvent, useEffect, useLayoutEffect, useRef, useState } from 'react'
import { Link, useParams } from 'react-router'
import { ApiProblem, api } from '../api.ts'
import type { ChatMessage } from '../chat.ts'
import { useChat } from '../chat-context.tsx'
import { useI18n } from '../i18n.tsx'
import { useSession } from '../session.ts'
import { ProblemMessage, RequireSignIn } from './parts.tsx'

interface StoredMessage {
  readonly id: string
  readonly roomId: string
  readonly senderId: string
  readonly sentAt: string
  readonly text: string | null
}

const PAGE = 30

const fromHistory = (message: StoredMessage): ChatMessage => ({ ...message, text: message.text ?? '' })

/**
 * The list with `incoming` added, each message once, oldest first. Ids are time-ordered
 * (UUIDv7), so ordering by id shows the room as the server's history does, whatever order
 * pages and live messages arrive in.
 */
function mergeById(current: readonly ChatMessage[], incoming: readonly ChatMessage[]): ChatMessage[] {
  const byId = new Map(current.map((message) => [message.id, message]))
  for (const message of incoming) if (!byId.has(message.id)) byId.set(message.id, message)
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** Goods names for room titles, fetched once each. */
const goodsNames = new Map<string, Promise<string>>()
function goodsName(goodsId: string): Promise<string> {
  let name = goodsNames.get(goodsId)
  if (!name) {
    name = api<{ name: string }>(`/api/goods/${encodeURIComponent(goodsId)}`)
      .then((goods) => goods.name)
      .catch(() => goodsId)
    goodsNames.set(goodsId, name)
  }
  return name
}

function GoodsName({ goodsId }: { goodsId: string }) {
  const [name, setName] = useState(goodsId)
  useEffect(() => {
    void goodsName(goodsId).then(setName)
  }, [goodsId])
  return <>{name}</>
}

function Room({ roomId }: { roomId: string }) {
  const { t } = useI18n()
  const { user } = useSession()
  const { connection, connected, setViewing } = useChat()
  const [messages, setMessages] = useState<ChatMessage[]>([])
  const [before, setBefore] = useState<string | null>(null)
  const [loaded, setLoaded] = useState(false)
  const [problem, setProblem] = useState<ApiProblem>()
  const [draft, setDraft] = useState('')
  const list = useRef<HTMLOListElement>(null)
  const top = useRef<HTMLLIElement>(null)
  const keepScroll = useRef<number | undefined>(undefined)
  const stickToBottom = useRef(true)
  const loadingOlder = useRef(false)

  useEffect(() => {
    setViewing(roomId)
    return () => setViewing(undefined)
  }, [roomId, setViewing])

  // The newest page first, then live messages after the newest of it.
  useEffect(() => {
    if (!connection) return
    let closed = false
    let close: (() => void) | undefined
    setMessages([])
    setLoaded(false)
    api<{ items: StoredMessage[]; nextBefore: string | null }>(`/api/chat/rooms/${roomId}/messages?limit=${PAGE}`)
      .then((page) => {
        if (closed) return
        const history = mergeById([], page.items.map(fromHistory))
        setMessages(history)
        setBefore(page.nextBefore)
        setLoaded(true)
        stickToBottom.current = true
        close = connection.openRoom(
          roomId,
          history.at(-1)?.id,
          history.map((message) => message.id),
          (message) => setMessages((current) => mergeById(current, [message])),
        )
      })
      .catch((error: unknown) => setProblem(error instanceof ApiProblem ? error : undefined))
    return () => {
      closed = true
      close?.()
    }
  }, [roomId, connection])

  // Older pages load when the top of the list scrolls into view.
  useEffect(() => {
    const sentinel = top.current
    if (!sentinel || !before || !loaded) return
    const observer = new IntersectionObserver((entries) => {
      if (!entries.some((entry) => entry.isIntersecting) || loadingOlder.current) return
      loadingOlder.current = true
      api<{ items: StoredMessage[]; nextBefore: string | null }>(
        `/api/chat/rooms/${roomId}/messages?limit=${PAGE}&before=${before}`,
      )
        .then((page) => {
          keepScroll.current = (list.current?.scrollHeight ?? 0) - (list.current?.scrollTop ?? 0)
          setMessages((current) => mergeById(current, page.items.map(fromHistory)))
          setBefore(page.nextBefore)
        })
        .catch(() => {})
        .finally(() => {
          loadingOlder.current = false
        })
    })
    observer.observe(sentinel)
    return () => observer.disconnect()
  }, [before, loaded, roomId])

  // Prepending keeps the reader where they were; a new message at the bottom follows it when already there.
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs after each change of the list
  useLayoutEffect(() => {
    const element = list.current
    if (!element) return
    if (keepScroll.current !== undefined) {
      element.scrollTop = element.scrollHeight - keepScroll.current
      keepScroll.current = undefined
    } else if (stickToBottom.current) {
      element.scrollTop = element.scrollHeight
    }
  }, [messages])

  function send(event: FormEvent): void {
    event.preventDefault()
    const text = draft.trim()
    if (!text || !connection) return
    if (connection.send(roomId, text)) setDraft('')
  }

  return (
    <section className="room" aria-labelledby="room-heading">
      <h2 id="room-heading">{t('chat.title')}</h2>
      <p className={`connection ${connected ? 'up' : 'down'}`} role="status" data-connected={connected}>
        {connected ? t('chat.connected') : t('chat.connecting')}
      </p>
      <ProblemMessage problem={problem} />
      <ol
        className="messages"
        ref={list}
        aria-busy={!loaded}
        aria-live="polite"
        aria-relevant="additions"
        onScroll={(event) => {
          const element = event.currentTarget
          stickToBottom.current = element.scrollHeight - element.scrollTop - element.clientHeight < 40
        }}
      >
        <li ref={top} className="older" aria-hidden={!before}>
          {before ? t('chat.older') : ''}
        </li>
        {messages.map((message) => (
          <li
            key={message.id}
            data-message-id={message.id}
            className={message.senderId === user?.id ? 'mine' : 'theirs'}
          >
            <span className="text">{message.text}</span>
            <time dateTime={message.sentAt}>{new Date(message.sentAt).toLocaleTimeString()}</time>
          </li>
        ))}
      </ol>
      <form onSubmit={send} className="composer">
        <label>
          <span className="visually-hidden">{t('chat.message')}</span>
          <input
            value={draft}
            maxLength={2000}
            onChange={(e) => setDraft(e.target.value)}
            placeholder={t('chat.message')}
          />
        </label>
        <button type="submit" disabled={!connected || !draft.trim()}>
          {t('chat.send')}
        </button>
      </form>
    </section>
  )
}

function ChatContent() {
  const { t } = useI18n()
  const { roomId } = useParams()
  const { rooms, unread, reloadRooms } = useChat()

  useEffect(() => {
    void reloadRooms().catch(() => {})
  }, [reloadRooms])

  return (
    <div className="chat">
      <nav aria-label={t('chat.rooms')} className="rooms">
        <h2>{t('chat.rooms')}</h2>
        {rooms.length === 0 && <p>{t('chat.noRooms')}</p>}
        <ul>
          {rooms.map((room) => {
            const count = unread.get(room.id) ?? 0
            return (
              <li key={room.id}>
                <Link to={`/chat/${room.id}`} aria-current={room.id === roomId ? 'page' : undefined}>
                  <GoodsName goodsId={room.goodsId} />
                  {count > 0 && (
                    <span className="badge" data-room-unread={room.id}>
                      <span className="visually-hidden">, </span>
                      {t('chat.unread', { count })}
                    </span>
                  )}
                </Link>
              </li>
            )
          })}
        </ul>
      </nav>
      {roomId ? <Room key={roomId} roomId={roomId} /> : <p>{t('chat.pick')}</p>}
    </div>
  )
}

export function ChatPage() {
  const { t } = useI18n()
  return (
    <section>
      <h1>{t('chat.title')}</h1>
      <RequireSignIn>
        <ChatContent />
      </RequireSignIn>
    </section>
  )
}
