/**
 * A Kafka broker of the test's own, on free ports and in a temporary folder, from the same
 * jars `hack/infra.sh` runs: a test may kill and restart it without touching the shared one.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { freePort } from './processes.ts'
import { eventually } from './support.ts'

const KAFKA_VERSION = '3.9.1'
const log4j = fileURLToPath(new URL('../../../hack/kafka/log4j.properties', import.meta.url))

/** Where `hack/infra.sh` keeps the broker's jars. */
export function kafkaLibs(): string {
  const cache = process.env.TIMEDEAL_CACHE ?? join(homedir(), '.cache', 'timedeal')
  return join(cache, `kafka-${KAFKA_VERSION}`, 'libs')
}

export const privateKafkaAvailable = (): boolean => existsSync(join(kafkaLibs(), `kafka_2.13-${KAFKA_VERSION}.jar`))

export interface PrivateKafka {
  readonly brokers: string[]
  /** Starts the broker (again, on the same data); resolves once it serves requests. */
  start(): Promise<void>
  /** Kills the broker at once (SIGKILL): no controlled shutdown, as in a crash. */
  kill(): Promise<void>
  /** Stops it and deletes its data. */
  destroy(): Promise<void>
  output(): string
}

export interface PrivateKafkaOptions {
  /** `auto.create.topics.enable`: off as on the shared broker, on to see what a client naming a missing topic gets. */
  autoCreateTopics?: boolean
}

export async function createPrivateKafka(options: PrivateKafkaOptions = {}): Promise<PrivateKafka> {
  const dir = await mkdtemp(join(tmpdir(), 'timedeal-kafka-'))
  const [port, controllerPort] = [await freePort(), await freePort()]
  const properties = join(dir, 'server.properties')
  await writeFile(
    properties,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      `log.dirs=${join(dir, 'logs')}`,
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=3',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'min.insync.replicas=1',
      'group.initial.rebalance.delay.ms=0',
      `auto.create.topics.enable=${options.autoCreateTopics ?? false}`,
      '',
    ].join('\n'),
  )
  const java = (...args: string[]) => [
    '-Xms128m',
    '-Xmx512m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-Djava.awt.headless=true',
    `-Dlog4j.configuration=file:${log4j}`,
    '-cp',
    `${kafkaLibs()}/*`,
    ...args,
  ]
  const run = promisify(execFile)
  const { stdout: clusterId } = await run('java', java('kafka.tools.StorageTool', 'random-uuid'))
  await run('java', java('kafka.tools.StorageTool', 'format', '-t', clusterId.trim(), '-c', properties))

  let child: ChildProcess | undefined
  let output = ''
  const broker = {
    brokers: [`127.0.0.1:${port}`],
    output: () => output,
    async start() {
      const started = spawn('java', java('kafka.Kafka', properties), { stdio: ['ignore', 'pipe', 'pipe'] })
      child = started
      let ready = false
      let tail = ''
      const collect = (chunk: Buffer) => {
        const text = chunk.toString()
        // Only the tail is kept for diagnosis; the broker is chatty.
        output = (output + text).slice(-200_000)
        ready ||= (tail + text).includes('Kafka Server started')
        tail = text.slice(-100)
      }
      started.stdout?.on('data', collect)
      started.stderr?.on('data', collect)
      await eventually(
        async () => {
          if (started.exitCode !== null) throw new Error(`the broker exited with ${started.exitCode}`)
          return ready ? true : undefined
        },
        90_000,
        'the private Kafka broker',
      )
    },
    async kill() {
      const running = child
      if (!running || running.exitCode !== null) return
      const exited = new Promise((resolve) => running.once('exit', resolve))
      running.kill('SIGKILL')
      await exited
    },
    async destroy() {
      await broker.kill()
      await rm(dir, { recursive: true, force: true })
    },
  }
  return broker
}
