import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useState } from 'react'

export type Language = 'en' | 'ko'

const en = {
  'app.title': 'Timedeal',
  'app.skip': 'Skip to content',
  'nav.sales': 'Sales',
  'nav.my': 'My page',
  'nav.seller': 'My shop',
  'nav.chat': 'Chat',
  'nav.signIn': 'Sign in',
  'nav.signUp': 'Sign up',
  'nav.signOut': 'Sign out',
  'nav.language': 'Language',
  'form.email': 'Email',
  'form.password': 'Password',
  'form.name': 'Name',
  'form.role': 'I want to',
  'form.role.BUYER': 'buy',
  'form.role.SELLER': 'sell',
  'form.code': 'Code from the mail',
  'signUp.title': 'Create an account',
  'signUp.submit': 'Sign up',
  'signUp.hint': 'At least 8 characters.',
  'verify.title': 'Confirm your address',
  'verify.lead': 'We mailed a 6-digit code to {email}. Enter it with the password you chose.',
  'verify.submit': 'Confirm',
  'verify.done': 'Your account is ready. Sign in.',
  'signIn.title': 'Sign in',
  'signIn.submit': 'Sign in',
  'signIn.noAccount': 'No account yet?',
  'sales.title': 'Time deals',
  'sales.empty': 'No sales right now.',
  'sales.opensIn': 'Opens in {time}',
  'sales.endsIn': 'Ends in {time}',
  'sales.left': '{count} of {total} left',
  'sales.price': '{price} won',
  'sales.limit': 'At most {limit} per buyer',
  'state.UPCOMING': 'Opens soon',
  'state.OPEN': 'On sale',
  'state.SOLD_OUT': 'Sold out',
  'state.CLOSED': 'Sale over',
  'goods.buy': 'Buy now',
  'goods.buying': 'Placing your order…',
  'goods.quantity': 'Quantity',
  'goods.signInToBuy': 'Sign in as a buyer to buy.',
  'goods.chatSeller': 'Ask the seller',
  'goods.placed': 'Order placed: {state}',
  'goods.paid': 'Paid. Your order is confirmed.',
  'goods.failed': 'The payment failed: {reason}',
  'goods.back': 'All sales',
  'buy.SOLD_OUT': 'Sold out: every unit is gone.',
  'buy.INSUFFICIENT_STOCK': 'Not enough units left for that quantity.',
  'buy.SALE_NOT_OPEN': 'The sale has not opened yet. Try again when the countdown ends.',
  'buy.SALE_CLOSED': 'The sale is over.',
  'buy.PURCHASE_LIMIT_EXCEEDED': 'You have reached the limit for this sale.',
  'buy.TOO_MANY_PENDING_ORDERS': 'You have too many orders waiting for payment.',
  'buy.retry': 'The server is busy and asked us to try again in {seconds} s. Retrying with the same order…',
  'buy.NETWORK': 'The server could not be reached. Your order was not placed twice: try again.',
  'my.title': 'My page',
  'my.profile': 'Profile',
  'my.orders': 'Recent orders',
  'my.goods': 'My goods',
  'my.wishlist': 'Wishlist',
  'my.unread': 'Unread chat notifications',
  'my.degraded': 'Not available right now: {part}. The rest of the page is up to date.',
  'my.partDown': 'This part is not available right now.',
  'my.noOrders': 'No orders yet.',
  'my.cancel': 'Cancel',
  'my.return': 'Return',
  'my.none': 'Nothing here yet.',
  'order.state': 'State',
  'seller.title': 'My shop',
  'seller.create': 'New time deal',
  'seller.name': 'Name',
  'seller.description': 'Description',
  'seller.price': 'Price (won)',
  'seller.stock': 'Stock',
  'seller.startsAt': 'Sale opens',
  'seller.endsAt': 'Sale ends',
  'seller.limit': 'Limit per buyer (empty: none)',
  'seller.submit': 'Create',
  'seller.created': 'Created: {name}',
  'seller.sales': 'My sales',
  'seller.sold': '{sold} sold',
  'seller.orders': 'Orders',
  'chat.title': 'Chat',
  'chat.rooms': 'Rooms',
  'chat.noRooms': 'No conversations yet. Open a goods page and ask the seller.',
  'chat.message': 'Message',
  'chat.send': 'Send',
  'chat.older': 'Loading older messages…',
  'chat.connected': 'Connected',
  'chat.connecting': 'Reconnecting…',
  'chat.unread': '{count} unread',
  'chat.notification': 'New message in a conversation',
  'chat.pick': 'Pick a conversation.',
  'common.error': 'Something went wrong: {detail}',
  'common.loading': 'Loading…',
  'common.signInFirst': 'Sign in first.',
  'time.days': '{d}d {h}:{m}:{s}',
}

export type Key = keyof typeof en

const ko: Record<Key, string> = {
  'app.title': '타임딜',
  'app.skip': '본문으로 건너뛰기',
  'nav.sales': '타임딜',
  'nav.my': '마이페이지',
  'nav.seller': '내 상점',
  'nav.chat': '채팅',
  'nav.signIn': '로그인',
  'nav.signUp': '회원가입',
  'nav.signOut': '로그아웃',
  'nav.language': '언어',
  'form.email': '이메일',
  'form.password': '비밀번호',
  'form.name': '이름',
  'form.role': '가입 유형',
  'form.role.BUYER': '구매자',
  'form.role.SELLER': '판매자',
  'form.code': '메일로 받은 코드',
  'signUp.title': '계정 만들기',
  'signUp.submit': '가입하기',
  'signUp.hint': '8자 이상.',
  'verify.title': '이메일 인증',
  'verify.lead': '{email}(으)로 6자리 코드를 보냈습니다. 정한 비밀번호와 함께 입력하세요.',
  'verify.submit': '인증하기',
  'verify.done': '계정이 준비되었습니다. 로그인하세요.',
  'signIn.title': '로그인',
  'signIn.submit': '로그인',
  'signIn.noAccount': '아직 계정이 없나요?',
  'sales.title': '타임딜',
  'sales.empty': '지금 진행 중인 타임딜이 없습니다.',
  'sales.opensIn': '{time} 후 오픈',
  'sales.endsIn': '{time} 후 종료',
  'sales.left': '{total}개 중 {count}개 남음',
  'sales.price': '{price}원',
  'sales.limit': '1인당 최대 {limit}개',
  'state.UPCOMING': '오픈 예정',
  'state.OPEN': '판매 중',
  'state.SOLD_OUT': '품절',
  'state.CLOSED': '판매 종료',
  'goods.buy': '바로 구매',
  'goods.buying': '주문하는 중…',
  'goods.quantity': '수량',
  'goods.signInToBuy': '구매하려면 구매자로 로그인하세요.',
  'goods.chatSeller': '판매자에게 문의',
  'goods.placed': '주문 접수: {state}',
  'goods.paid': '결제 완료. 주문이 확정되었습니다.',
  'goods.failed': '결제 실패: {reason}',
  'goods.back': '전체 타임딜',
  'buy.SOLD_OUT': '품절되었습니다.',
  'buy.INSUFFICIENT_STOCK': '남은 수량이 부족합니다.',
  'buy.SALE_NOT_OPEN': '아직 오픈 전입니다. 카운트다운이 끝나면 다시 시도하세요.',
  'buy.SALE_CLOSED': '판매가 종료되었습니다.',
  'buy.PURCHASE_LIMIT_EXCEEDED': '이 타임딜의 구매 한도에 도달했습니다.',
  'buy.TOO_MANY_PENDING_ORDERS': '결제 대기 중인 주문이 너무 많습니다.',
  'buy.retry': '서버가 혼잡하여 {seconds}초 후 다시 시도해 달라고 합니다. 같은 주문으로 다시 시도하는 중…',
  'buy.NETWORK': '서버에 연결할 수 없습니다. 주문은 중복되지 않습니다. 다시 시도하세요.',
  'my.title': '마이페이지',
  'my.profile': '프로필',
  'my.orders': '최근 주문',
  'my.goods': '내 상품',
  'my.wishlist': '찜 목록',
  'my.unread': '읽지 않은 채팅 알림',
  'my.degraded': '지금 표시할 수 없는 항목: {part}. 나머지는 최신입니다.',
  'my.partDown': '이 항목은 지금 표시할 수 없습니다.',
  'my.noOrders': '주문 내역이 없습니다.',
  'my.cancel': '취소',
  'my.return': '반품',
  'my.none': '아직 없습니다.',
  'order.state': '상태',
  'seller.title': '내 상점',
  'seller.create': '새 타임딜',
  'seller.name': '상품명',
  'seller.description': '설명',
  'seller.price': '가격(원)',
  'seller.stock': '재고',
  'seller.startsAt': '오픈 시각',
  'seller.endsAt': '종료 시각',
  'seller.limit': '1인당 한도(비우면 없음)',
  'seller.submit': '등록',
  'seller.created': '등록됨: {name}',
  'seller.sales': '내 타임딜',
  'seller.sold': '{sold}개 판매',
  'seller.orders': '주문',
  'chat.title': '채팅',
  'chat.rooms': '대화방',
  'chat.noRooms': '아직 대화가 없습니다. 상품 페이지에서 판매자에게 문의하세요.',
  'chat.message': '메시지',
  'chat.send': '보내기',
  'chat.older': '이전 메시지 불러오는 중…',
  'chat.connected': '연결됨',
  'chat.connecting': '다시 연결하는 중…',
  'chat.unread': '읽지 않음 {count}',
  'chat.notification': '대화에 새 메시지가 있습니다',
  'chat.pick': '대화방을 고르세요.',
  'common.error': '문제가 생겼습니다: {detail}',
  'common.loading': '불러오는 중…',
  'common.signInFirst': '먼저 로그인하세요.',
  'time.days': '{d}일 {h}:{m}:{s}',
}

const dictionaries: Record<Language, Record<Key, string>> = { en, ko }
const STORAGE_KEY = 'timedeal.language'

export type Translate = (key: Key, values?: Record<string, string | number>) => string

interface I18n {
  readonly language: Language
  readonly setLanguage: (language: Language) => void
  readonly t: Translate
}

/** The saved choice, else the first of the browser's languages we speak, else English. */
function initialLanguage(): Language {
  const saved = localStorage.getItem(STORAGE_KEY)
  if (saved === 'en' || saved === 'ko') return saved
  for (const tag of navigator.languages ?? [navigator.language]) {
    const base = tag.toLowerCase().split('-')[0]
    if (base === 'ko' || base === 'en') return base
  }
  return 'en'
}

const I18nContext = createContext<I18n | undefined>(undefined)

export function I18nProvider({ children }: { children: ReactNode }) {
  const [language, setLanguageState] = useState<Language>(initialLanguage)
  useEffect(() => {
    document.documentElement.lang = language
  }, [language])
  const setLanguage = useCallback((next: Language) => {
    localStorage.setItem(STORAGE_KEY, next)
    setLanguageState(next)
  }, [])
  const value = useMemo<I18n>(() => {
    const dictionary = dictionaries[language]
    const t: Translate = (key, values = {}) =>
      dictionary[key].replace(/\{(\w+)\}/g, (whole, name: string) => String(values[name] ?? whole))
    return { language, setLanguage, t }
  }, [language, setLanguage])
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>
}

export function useI18n(): I18n {
  const i18n = useContext(I18nContext)
  if (!i18n) throw new Error('useI18n outside I18nProvider')
  return i18n
}

/** `1d 02:03:04`, or `02:03:04` under a day. */
export function formatDuration(ms: number, t: Translate): string {
  const total = Math.max(0, Math.ceil(ms / 1000))
  const pad = (n: number) => String(n).padStart(2, '0')
  const d = Math.floor(total / 86_400)
  const h = pad(Math.floor((total % 86_400) / 3600))
  const m = pad(Math.floor((total % 3600) / 60))
  const s = pad(total % 60)
  return d > 0 ? t('time.days', { d, h, m, s }) : `${h}:${m}:${s}`
}

export function formatPrice(price: number, language: Language): string {
  return new Intl.NumberFormat(language === 'ko' ? 'ko-KR' : 'en-US').format(price)
}
