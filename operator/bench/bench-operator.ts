/**
 * `make bench-operator`. Topics: 500 KafkaTopic resources created at once on the local API
 * server with `timedeal-operator run` watching them (its API traffic counted by a proxy in front
 * of the API server); time until all are Ready, Kafka admin and API-server requests per topic,
 * the operator's peak memory; beside it, the same 500 topics made by one bare kafkajs
 * `createTopics` call (the ceiling). Warm-up: 100,000 goods beside a bare pipelined load.
 * Goals: 500 topics Ready within 60 s; warm-up within 2× the bare load. Writes
 * bench-results/operator-<time>.md with its chart operator-<time>.svg, prints the ratios and ends
 * with one JSON line; cleans up what it made. BENCH_TOPICS and BENCH_GOODS make a smaller run.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CustomObjectsApi } from '@kubernetes/client-node'
import { Kafka, logLevel } from 'kafkajs'
import { escapeXml, round, saveReport } from '../../hack/bench/figures.ts'
import { findCondition } from '../src/conditions.ts'
import type { KafkaTopic } from '../src/kafka-topic/types.ts'
import { GROUP, VERSION } from '../src/runtime/controller.ts'
import { benchWarmup, type WarmupFigures } from '../src/stock-warmup/bench.ts'
import { startApiProxy } from '../test/runtime/api-proxy.ts'
import { adminKubeConfig, ensureCrds, freshNamespace } from '../test/runtime/kube.ts'

const TOPICS = Number(process.env.BENCH_TOPICS ?? 500)
const GOODS = Number(process.env.BENCH_GOODS ?? 100_000)
const READY_GOAL_MS = 60_000
/** Reconciles in flight bound how many topics one admin call can batch; reconciles wait on I/O. */
const CONCURRENCY = process.env.RECONCILE_CONCURRENCY ?? '64'
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')
const prefix = process.env.KAFKA_TOPIC_PREFIX ?? `bench-${Date.now()}.`
const operatorEntry = fileURLToPath(new URL('../src/main.ts', import.meta.url))

const say = (line: string) => process.stdout.write(`[bench-operator] ${line}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface TopicFigures {
  topics: number
  readyMs: number
  /** How long the bench took to create the resources (part of readyMs). */
  createdMs: number
  kafkaAdminRequests: number
  apiRequests: number
  peakRssBytes: number
  bareCreateMs: number
}

function metric(text: string, name: string): number {
  const line = text
    .split('\n')
    .find((candidate) => candidate.startsWith(`${name}{`) || candidate.startsWith(`${name} `))
  return line ? Number(line.split(' ').at(-1)) : 0
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net')
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  return typeof address === 'object' && address ? address.port : 0
}

async function waitReadyz(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the operator exited with ${child.exitCode}`)
    const answer = await fetch(`${url}/readyz`).catch(() => undefined)
    if (answer?.status === 200) return
    await sleep(200)
  }
  throw new Error('the operator did not become ready')
}

async function benchTopics(): Promise<TopicFigures> {
  await ensureCrds()
  const kc = adminKubeConfig()
  const custom = kc.makeApiClient(CustomObjectsApi)
  const namespace = await freshNamespace(kc, 'bench')
  const proxy = await startApiProxy(kc)
  const kubeconfigFile = join(mkdtempSync(join(tmpdir(), 'bench-operator-')), 'kubeconfig')
  writeFileSync(kubeconfigFile, proxy.kubeConfig.exportConfig(), { mode: 0o600 })
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const operator = spawn(process.execPath, [operatorEntry, 'run'], {
    env: {
      ...process.env,
      KUBECONFIG: kubeconfigFile,
      WATCH_NAMESPACES: namespace.name,
      LEADER_ELECTION_NAMESPACE: namespace.name,
      KAFKA_TOPIC_PREFIX: `${prefix}op.`,
      OPERATOR_HOST: '127.0.0.1',
      OPERATOR_PORT: String(port),
      LOG_LEVEL: 'warn',
      RECONCILE_CONCURRENCY: CONCURRENCY,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const kafka = new Kafka({ clientId: 'bench-operator', brokers, logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  let peakRss = 0
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      const text = await (await fetch(`${url}/metrics`).catch(() => undefined))?.text()
      if (text) peakRss = Math.max(peakRss, metric(text, 'process_resident_memory_bytes'))
      await sleep(250)
    }
  })()
  try {
    await waitReadyz(url, operator)
    const before = {
      api: proxy.requests.length,
      kafka: metric(await (await fetch(`${url}/metrics`)).text(), 'operator_kafka_admin_requests_total'),
    }
    say(`creating ${TOPICS} KafkaTopic resources in ${namespace.name}`)
    const names = Array.from({ length: TOPICS }, (_, index) => `topic-${String(index).padStart(4, '0')}`)
    const start = Date.now()
    const queue = [...names]
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
          await custom.createNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            plural: 'kafkatopics',
            namespace: namespace.name,
            body: {
              apiVersion: `${GROUP}/${VERSION}`,
              kind: 'KafkaTopic',
              metadata: { name },
              spec: { partitions: 1 },
            },
          })
        }
      }),
    )
    const createdMs = Date.now() - start
    say(`created the ${TOPICS} resources in ${createdMs} ms`)
    let readyMs = Number.NaN
    while (Date.now() - start < 5 * READY_GOAL_MS) {
      const list = (await custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: 'kafkatopics',
        namespace: namespace.name,
      })) as { items: KafkaTopic[] }
      const ready = list.items.filter(
        (item) => findCondition(item.status?.conditions, 'Ready')?.status === 'True',
      ).length
      if (ready === TOPICS) {
        readyMs = Date.now() - start
        break
      }
      await sleep(100)
    }
    say(Number.isNaN(readyMs) ? 'not all topics became Ready' : `all ${TOPICS} Ready after ${readyMs} ms`)
    // Let the follow-up reconciles (the informer seeing the status writes) settle before counting.
    await sleep(3_000)
    const after = {
      api: proxy.requests.length,
      kafka: metric(await (await fetch(`${url}/metrics`)).text(), 'operator_kafka_admin_requests_total'),
    }

    say(`creating the same ${TOPICS} topics with one bare kafkajs createTopics call`)
    const bareStart = Date.now()
    await admin.createTopics({
      waitForLeaders: true,
      timeout: 60_000,
      topics: names.map((name) => ({ topic: `${prefix}bare.${name}`, numPartitions: 1, replicationFactor: 1 })),
    })
    const bareCreateMs = Date.now() - bareStart
    return {
      topics: TOPICS,
      readyMs,
      createdMs,
      kafkaAdminRequests: after.kafka - before.kafka,
      apiRequests: after.api - before.api,
      peakRssBytes: peakRss,
      bareCreateMs,
    }
  } finally {
    sampling = false
    await sampler
    operator.kill('SIGTERM')
    await once(operator, 'exit')
    await proxy.close()
    await namespace.drop()
    const mine = (await admin.listTopics()).filter((topic) => topic.startsWith(prefix))
    for (let index = 0; index < mine.length; index += 200) {
      await admin.deleteTopics({ topics: mine.slice(index, index + 200), timeout: 60_000 }).catch(() => undefined)
    }
    await admin.disconnect()
  }
}

interface Ratios {
  /** Operator's time to all Ready over one bare createTopics call for the same topics. */
  operatorVsBareTopics: number
  /** Warm-up time over the bare pipelined load of the same keys. */
  warmupVsBareLoad: number
}

interface Comparison {
  readonly label: string
  readonly measuredLabel: string
  readonly measuredMs: number
  readonly ceilingLabel: string
  readonly ceilingMs: number
}

/** One pair of bars per comparison (own scale each, since the two differ by orders of magnitude). */
function chartSvg(title: string, comparisons: readonly Comparison[]): string {
  const width = 900
  const left = 330
  const barArea = 440
  const groupHeight = 120
  const top = 60
  const height = top + groupHeight * comparisons.length + 30
  const groups = comparisons.map((comparison, index) => {
    const y = top + index * groupHeight
    const max = Math.max(1, comparison.measuredMs, comparison.ceilingMs)
    const bar = (label: string, ms: number, row: number, colour: string) => {
      const length = Math.max(2, (ms / max) * barArea)
      const rowY = y + 26 + row * 36
      return [
        `<text x="${left - 12}" y="${rowY + 18}" text-anchor="end" font-size="13">${escapeXml(label)}</text>`,
        `<rect x="${left}" y="${rowY + 4}" width="${length.toFixed(1)}" height="24" rx="3" fill="${colour}"/>`,
        `<text x="${(left + length + 8).toFixed(1)}" y="${rowY + 21}" font-size="13">${round(ms / 1000, 2)} s</text>`,
      ].join('\n  ')
    }
    const ratio = comparison.measuredMs / Math.max(1, comparison.ceilingMs)
    return [
      `<text x="20" y="${y + 16}" font-size="14" font-weight="bold">${escapeXml(comparison.label)} · ${round(ratio, 2)}×</text>`,
      bar(comparison.measuredLabel, comparison.measuredMs, 0, '#2f6fdf'),
      bar(comparison.ceilingLabel, comparison.ceilingMs, 1, '#1d9e74'),
    ].join('\n  ')
  })
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">
  <rect width="100%" height="100%" fill="#fff"/>
  <text x="20" y="32" font-size="18" font-weight="bold">${escapeXml(title)}</text>
  ${groups.join('\n  ')}
  <text x="20" y="${height - 12}" font-size="11" fill="#777">seconds, lower is better; green is the bare ceiling</text>
</svg>
`
}

function comparisons(topics: TopicFigures, warmup: WarmupFigures): Comparison[] {
  return [
    {
      label: `${topics.topics} KafkaTopics`,
      measuredLabel: 'operator: created → all Ready',
      measuredMs: topics.readyMs,
      ceilingLabel: 'bare kafkajs createTopics',
      ceilingMs: topics.bareCreateMs,
    },
    {
      label: `${warmup.goods.toLocaleString('en-US')} goods`,
      measuredLabel: 'StockWarmup',
      measuredMs: warmup.warmupMs,
      ceilingLabel: 'bare pipelined load',
      ceilingMs: warmup.bareLoadMs,
    },
  ]
}

function report(topics: TopicFigures, warmup: WarmupFigures, ratios: Ratios, chartFile: string, when: Date): string {
  const perTopic = (count: number) => round(count / topics.topics, 2)
  return [
    `# make bench-operator, ${when.toISOString()}`,
    '',
    `![operator against its ceilings](${chartFile})`,
    '',
    '## KafkaTopic',
    '',
    '| what | figure | goal |',
    '| --- | --- | --- |',
    `| ${topics.topics} resources created at once → all Ready | ${round(topics.readyMs / 1000, 2)} s | ≤ 60 s: ${topics.readyMs <= READY_GOAL_MS ? 'met' : 'missed'} |`,
    `| of which creating the resources (the bench, 32 at a time) | ${round(topics.createdMs / 1000, 2)} s | |`,
    `| the same topics, one bare kafkajs createTopics (ceiling) | ${round(topics.bareCreateMs / 1000, 2)} s | |`,
    `| Kafka admin requests (per topic) | ${topics.kafkaAdminRequests} (${perTopic(topics.kafkaAdminRequests)}) | |`,
    `| API-server requests by the operator (per topic) | ${topics.apiRequests} (${perTopic(topics.apiRequests)}) | |`,
    `| operator peak resident memory | ${round(topics.peakRssBytes / 2 ** 20)} MiB | |`,
    '',
    `The operator ran with RECONCILE_CONCURRENCY=${CONCURRENCY} (the batch size is bounded by it) and its other defaults (rate 50/s, burst 200); API-server`,
    'requests were counted by a proxy in front of the API server (lists, watches, status writes,',
    "Events, Lease renewals); the bench's own creates and polls are not among them.",
    '',
    '## StockWarmup',
    '',
    '| what | figure | goal |',
    '| --- | --- | --- |',
    `| warm ${warmup.goods} goods (chunks of ${warmup.chunkSize}) | ${round(warmup.warmupMs / 1000, 2)} s, ${warmup.warmupRoundTrips} Redis round trips | |`,
    `| bare pipelined load of the same keys (ceiling) | ${round(warmup.bareLoadMs / 1000, 2)} s, ${warmup.bareRoundTrips} round trips | |`,
    `| ratio | ${round(warmup.ratio, 2)}× | ≤ 2×: ${warmup.goalMet ? 'met' : 'missed'} |`,
    '',
    '## Ratios',
    '',
    `- operatorVsBareTopics (operator to all Ready / bare createTopics): **${round(ratios.operatorVsBareTopics, 2)}×**`,
    `- warmupVsBareLoad (warm-up / bare pipelined load): **${round(ratios.warmupVsBareLoad, 2)}×**`,
    '',
  ].join('\n')
}

async function main(): Promise<void> {
  const topics = await benchTopics()
  say(`warming ${GOODS} goods`)
  const warmup = await benchWarmup({ goods: GOODS })
  const ratios: Ratios = {
    operatorVsBareTopics: topics.readyMs / topics.bareCreateMs,
    warmupVsBareLoad: warmup.warmupMs / warmup.bareLoadMs,
  }
  let text = ''
  const file = await saveReport({
    name: 'operator',
    svg: chartSvg('Timedeal operator against bare kafkajs and a bare Redis load', comparisons(topics, warmup)),
    markdown: (chartFile, when) => {
      text = report(topics, warmup, ratios, chartFile, when)
      return text
    },
  })
  process.stdout.write(`\n${text}\nwritten to ${file}\n`)
  say(
    `operatorVsBareTopics ${round(ratios.operatorVsBareTopics, 2)}×, warmupVsBareLoad ${round(ratios.warmupVsBareLoad, 2)}×`,
  )
  const figures = {
    topics: topics.topics,
    readyMs: topics.readyMs,
    bareCreateMs: topics.bareCreateMs,
    kafkaAdminRequests: topics.kafkaAdminRequests,
    apiRequests: topics.apiRequests,
    peakRssMiB: round(topics.peakRssBytes / 2 ** 20),
    goods: warmup.goods,
    warmupMs: warmup.warmupMs,
    bareLoadMs: warmup.bareLoadMs,
    topicsGoalMet: topics.readyMs <= READY_GOAL_MS,
    warmupGoalMet: warmup.goalMet,
  }
  const roundedRatios = {
    operatorVsBareTopics: round(ratios.operatorVsBareTopics, 2),
    warmupVsBareLoad: round(ratios.warmupVsBareLoad, 2),
  }
  process.stdout.write(`${JSON.stringify({ bench: 'operator', ...figures, ratios: roundedRatios })}\n`)
  if (!(topics.readyMs <= READY_GOAL_MS) || !warmup.goalMet) process.exitCode = 1
}

await main()
