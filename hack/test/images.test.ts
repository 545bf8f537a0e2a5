// The image's build inputs, checked without building it (`make images` builds it).
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { repoRoot } from '../chart-files.ts'

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8')

describe('the platform image', () => {
  test('Docker and podman/buildah leave out the same files', () => {
    assert.equal(read('.dockerignore'), read('.containerignore'))
  })

  test('the entry point starts every service, and the chart deploys every one', () => {
    const entrypoint = read('hack/images/entrypoint.sh')
    const servicesLine = /^\s*([a-z|\s]+)\)\s*\n\s*exec node "\/app\/services\/\$deployable\/src\/main\.ts"/m.exec(
      entrypoint,
    )
    assert.ok(servicesLine, 'the entry point has a line for the services')
    const known = (servicesLine[1] as string).split('|').map((name) => name.trim())
    const services = readdirSync(join(repoRoot, 'services')).filter((name) =>
      existsSync(join(repoRoot, 'services', name, 'src', 'main.ts')),
    )
    assert.deepEqual(known.sort(), services.sort())
    const values = read('charts/timedeal/values.yaml')
    for (const service of services) assert.match(values, new RegExp(`^  ${service}:\\n    enabled: true`, 'm'))
  })

  test("the dependency layer is built from every workspace's package manifest", () => {
    const containerfile = read('Containerfile')
    const { workspaces } = JSON.parse(read('package.json')) as { workspaces: string[] }
    const manifests = workspaces.flatMap((pattern) => {
      const parent = pattern.replace(/\/\*$/, '')
      const folders = pattern.endsWith('/*')
        ? readdirSync(join(repoRoot, parent)).map((name) => `${parent}/${name}`)
        : [parent]
      return folders.filter((folder) => existsSync(join(repoRoot, folder, 'package.json')))
    })
    const copied = [...containerfile.matchAll(/^COPY (\S+)\/package\.json \1\/$/gm)].map((match) => match[1])
    assert.deepEqual(copied.sort(), manifests.sort())
  })

  test('the runtime image runs as a non-root user and ships neither npm nor the compiler', () => {
    const containerfile = read('Containerfile')
    const runtime = containerfile.slice(containerfile.lastIndexOf('\nFROM '))
    assert.match(runtime, /^USER 1000:1000$/m)
    assert.match(runtime, /rm -rf \/usr\/local\/lib\/node_modules \/usr\/local\/bin\/npm \/usr\/local\/bin\/npx/)
    assert.match(containerfile, /npm ci --omit=dev/)
    assert.match(containerfile, /rm -rf node_modules\/typescript/)
    // Vite arrives with the production dependencies as an optional peer; the build stage has its own.
    assert.match(containerfile, /^ +node_modules\/vite node_modules\/\.bin\/vite /m)
  })

  test('the runtime image holds the built web app where the gateway looks, and not its build tools', () => {
    const containerfile = read('Containerfile')
    const runtime = containerfile.slice(containerfile.lastIndexOf('\nFROM '))
    const webStage = /^FROM \S+ AS (\S+)\n(?:(?!FROM ).*\n)*?RUN npm run build --workspace web$/m.exec(containerfile)
    assert.ok(webStage, 'a build stage runs the web build')
    assert.match(runtime, new RegExp(`^COPY --from=${webStage[1]} /app/web/dist /app/web/dist$`, 'm'))
    const gatewaySettings = read('services/gateway/src/settings.ts')
    assert.match(gatewaySettings, /new URL\('\.\.\/\.\.\/\.\.\/web\/dist', import\.meta\.url\)/)
    // From the web stage the runtime takes web/dist only: no Vite, no devDependencies, no web sources.
    const fromStages = [...runtime.matchAll(/^COPY --from=.*$/gm)].map((match) => match[0])
    assert.deepEqual(fromStages, [
      'COPY --from=dependencies /app /app',
      `COPY --from=${webStage[1]} /app/web/dist /app/web/dist`,
    ])
    assert.doesNotMatch(runtime, /^COPY (?:\.|web\/\S*) /m)
    for (const ignore of ['.containerignore', '.dockerignore']) {
      for (const input of ['web/index.html', 'web/vite.config.ts', 'web/src', 'web/public']) {
        assert.match(read(ignore), new RegExp(`^!${input.replace('.', '\\.')}$`, 'm'), `${ignore} lets ${input} in`)
      }
    }
  })
})
