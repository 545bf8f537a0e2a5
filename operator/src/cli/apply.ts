/**
 * `timedeal-operator apply -f <file|dir>`: the controllers' reconcile logic run once over
 * resources read from YAML, with no Kubernetes. Kafka and the warm-up's sources come from the
 * operator's own settings; progress goes to stdout, one line per resource.
 */
import type { Logger } from '@timedeal/platform'
import { findCondition } from '../conditions.ts'
import { connectKafkaTopicAdmin, type KafkaTopicAdmin } from '../kafka-topic/kafka-admin.ts'
import { planKafkaTopic, type TopicPlan } from '../kafka-topic/plan.ts'
import { KAFKA_TOPIC_KIND, type KafkaTopic, type KafkaTopicStatus } from '../kafka-topic/types.ts'
import { API_VERSION } from '../runtime/controller.ts'
import type { OperatorSettings } from '../settings.ts'
import { STOCK_WARMUP_KIND, type StockWarmup, type StockWarmupStatus } from '../stock-warmup/types.ts'
import { type Manifest, ManifestError, readManifests } from './manifests.ts'

export interface ApplyOptions {
  files: readonly string[]
  /** Wait for StockWarmups whose time has not come instead of reporting them Scheduled. */
  wait: boolean
  topicPrefix: string
}

export type Print = (line: string) => void

const KINDS = [KAFKA_TOPIC_KIND, STOCK_WARMUP_KIND]

/** Returns the process exit code: 0 when every resource is Ready (or Scheduled without --wait). */
export async function applyCommand(
  options: ApplyOptions,
  settings: OperatorSettings,
  logger: Logger,
  print: Print = (line) => process.stdout.write(`${line}\n`),
): Promise<number> {
  let manifests: Manifest[]
  try {
    manifests = await readManifests(options.files)
    for (const { source, resource } of manifests) checkKind(source, resource)
  } catch (error) {
    if (!(error instanceof ManifestError)) throw error
    print(`error: ${error.message}`)
    return 1
  }
  const topics = manifests.filter((manifest) => manifest.resource.kind === KAFKA_TOPIC_KIND)
  const warmups = manifests.filter((manifest) => manifest.resource.kind === STOCK_WARMUP_KIND)
  print(`applying ${topics.length} KafkaTopic and ${warmups.length} StockWarmup resources`)
  let failed = 0
  if (topics.length > 0) {
    const target = {
      brokers: settings.KAFKA_BROKERS,
      clientId: `${settings.SERVICE_NAME}-apply`,
      topicPrefix: options.topicPrefix,
    }
    failed += await withTopicAdmin(target, (admin) => applyKafkaTopics(topics, admin, options.topicPrefix, print))
  }
  if (warmups.length > 0) failed += await applyWarmups(warmups, options, settings, logger, print)
  print(failed === 0 ? 'done' : `${failed} resource(s) not ready`)
  return failed === 0 ? 0 : 1
}

export interface TopicTarget {
  brokers: readonly string[]
  clientId: string
  topicPrefix: string
}

async function withTopicAdmin<T>(target: TopicTarget, use: (admin: KafkaTopicAdmin) => Promise<T>): Promise<T> {
  const admin = await connectKafkaTopicAdmin(target.brokers, target.clientId)
  try {
    return await use(admin)
  } finally {
    await admin.close()
  }
}

/**
 * Applies only the KafkaTopics in the given files (what a test run or a script needs, without
 * the operator's other settings). Returns how many are not Ready.
 */
export async function applyTopicFiles(files: readonly string[], target: TopicTarget, print: Print): Promise<number> {
  const manifests = await readManifests(files)
  for (const { source, resource } of manifests) checkKind(source, resource)
  const topics = manifests.filter((manifest) => manifest.resource.kind === KAFKA_TOPIC_KIND)
  return withTopicAdmin(target, (admin) => applyKafkaTopics(topics, admin, target.topicPrefix, print))
}

/**
 * Applies KafkaTopic resources built in code (a script's own topics, e.g. from
 * `catalogTopicResource`) with the same logic as files. Returns how many are not Ready.
 */
export function applyTopicResources(
  resources: readonly KafkaTopic[],
  target: TopicTarget,
  print: Print,
): Promise<number> {
  const manifests = resources.map((resource, index) => ({ source: `resource ${index + 1}`, resource }))
  return withTopicAdmin(target, (admin) => applyKafkaTopics(manifests, admin, target.topicPrefix, print))
}

function checkKind(source: string, resource: Manifest['resource']): void {
  if (resource.apiVersion !== API_VERSION || !KINDS.includes(resource.kind)) {
    throw new ManifestError(
      `${source}: ${resource.apiVersion} ${resource.kind} is not reconciled here (expected ${API_VERSION} ${KINDS.join(' or ')})`,
    )
  }
}

/**
 * Reconciles every KafkaTopic once, all at the same time so the admin calls batch; resources in
 * the files are each other's peers (the first naming a topic owns it). Returns how many are not Ready.
 */
export async function applyKafkaTopics(
  manifests: readonly Manifest[],
  admin: KafkaTopicAdmin,
  topicPrefix: string,
  print: Print,
): Promise<number> {
  const start = Date.now()
  // Files have no creation times: their order stands in for it.
  const resources: KafkaTopic[] = manifests.map(({ resource }, index) => ({
    ...resource,
    metadata: {
      ...resource.metadata,
      creationTimestamp: resource.metadata.creationTimestamp ?? new Date(start + index),
    },
  }))
  const brokerAutoCreates = await admin.brokerAutoCreates()
  const outcomes = await Promise.all(
    resources.map(async (resource, index) => {
      const name = `kafkatopic/${resource.metadata.name}`
      try {
        const observed = await admin.describe(`${topicPrefix}${resource.spec?.topicName ?? resource.metadata.name}`)
        const plan = planKafkaTopic(resource, {
          observed,
          peers: resources,
          brokerAutoCreates,
          topicPrefix,
          now: Date.now(),
        })
        await admin.apply(plan.actions)
        print(`${name}: ${summary(plan.status)}${whatChanged(plan)}`)
        return findCondition(plan.status.conditions, 'Ready')?.status === 'True'
      } catch (error) {
        print(
          `${name}: Kafka error: ${error instanceof Error ? error.message : String(error)} [${manifests[index]?.source}]`,
        )
        return false
      }
    }),
  )
  if (brokerAutoCreates) {
    print('warning: the broker creates topics on first use (auto.create.topics.enable=true)')
  }
  return outcomes.filter((ready) => !ready).length
}

/**
 * A file carries no status, so every plan for an existing topic says `Adopted`: on the command
 * line that is no news. A topic that needed nothing is reported unchanged.
 */
function whatChanged(plan: TopicPlan): string {
  const done = plan.events.filter((event) => event.reason !== 'Adopted').map((event) => event.message)
  if (done.length > 0) return ` (${done.join('; ')})`
  const ready = findCondition(plan.status.conditions, 'Ready')?.status === 'True'
  return plan.actions.length === 0 && ready ? ' (unchanged, in sync)' : ''
}

function summary(status: KafkaTopicStatus): string {
  const ready = findCondition(status.conditions, 'Ready')
  if (!ready) return 'unknown'
  const state = ready.status === 'True' ? 'Ready' : `not ready, ${ready.reason}`
  return ready.status === 'True' ? `${state} ${status.topicName}` : `${state}: ${ready.message}`
}

async function applyWarmups(
  manifests: readonly Manifest[],
  options: ApplyOptions,
  settings: OperatorSettings,
  logger: Logger,
  print: Print,
): Promise<number> {
  // Loaded only when a StockWarmup is applied: topics alone need no MySQL or Redis client.
  const { reconcileStockWarmupOnce } = await import('../stock-warmup/once.ts')
  let failed = 0
  for (const { resource } of manifests) {
    const warmup = resource as StockWarmup
    const name = `stockwarmup/${warmup.metadata.name}`
    let lastProgress = ''
    const status = await reconcileStockWarmupOnce(warmup, settings, {
      wait: options.wait,
      logger,
      progress: (line: string) => {
        lastProgress = `${name}: ${line}`
        print(lastProgress)
      },
    })
    const outcome = `${name}: ${warmupOutcome(status)}`
    // A warm-up that ends where its last progress line left it (Scheduled) is not reported twice.
    if (outcome !== lastProgress) print(outcome)
    const settled = status.phase === 'Ready' || (status.phase === 'Scheduled' && !options.wait)
    if (!settled) failed++
  }
  return failed
}

/** `Ready (Warmed): 3 loaded, ...`; the reason only where it says more than the phase. */
function warmupOutcome(status: StockWarmupStatus): string {
  const phase = status.phase ?? 'Unknown'
  const ready = findCondition(status.conditions, 'Ready')
  if (!ready) return phase
  return `${phase}${ready.reason === phase ? '' : ` (${ready.reason})`}: ${ready.message}`
}
