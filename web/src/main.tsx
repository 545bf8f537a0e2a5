import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { BrowserRouter, Route, Routes } from 'react-router'
import { ChatProvider } from './chat-context.tsx'
import { I18nProvider } from './i18n.tsx'
import { Layout } from './layout.tsx'
import { SignInPage, SignUpPage, VerifyPage } from './pages/account.tsx'
import { ChatPage } from './pages/chat.tsx'
import { GoodsPage } from './pages/goods.tsx'
import { MyPage } from './pages/my-page.tsx'
import { SalesPage } from './pages/sales.tsx'
import { SellerPage } from './pages/seller.tsx'
import './styles.css'

const root = document.getElementById('root')
if (!root) throw new Error('index.html has no #root')

createRoot(root).render(
  <StrictMode>
    <I18nProvider>
      <BrowserRouter>
        <ChatProvider>
          <Routes>
            <Route element={<Layout />}>
              <Route index element={<SalesPage />} />
              <Route path="goods/:id" element={<GoodsPage />} />
              <Route path="signup" element={<SignUpPage />} />
              <Route path="verify" element={<VerifyPage />} />
              <Route path="signin" element={<SignInPage />} />
              <Route path="my" element={<MyPage />} />
              <Route path="seller" element={<SellerPage />} />
              <Route path="chat" element={<ChatPage />} />
              <Route path="chat/:roomId" element={<ChatPage />} />
            </Route>
          </Routes>
        </ChatProvider>
      </BrowserRouter>
    </I18nProvider>
  </StrictMode>,
)
