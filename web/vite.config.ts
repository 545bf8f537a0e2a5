import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// `make web-dev`: the app with hot reload on 5173; the API and the chat are the gateway's (8080),
// so the browser still talks to one origin.
const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080'

export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: true,
    proxy: {
      '/api': { target: gateway },
      '/ws': { target: gateway, ws: true },
    },
  },
})
