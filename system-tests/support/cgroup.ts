import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpuCores, memoryBytes } from './quantity.js';

// Resource limits for processes started by hand, as Kubernetes sets a container's
// limits: a cgroup (v1, as on these machines) with a CFS quota for CPU (limit x the
// 100 ms period) and a memory limit. Podman does the same for a container given
// --cpus and --memory.

const ROOT = '/sys/fs/cgroup';
const PERIOD_US = 100_000;

/** Undefined when cgroup v1's cpu and memory controllers can be written here, else why not. */
export function cgroupsMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root (cgroups are written as root)';
  for (const controller of ['cpu', 'memory'])
    if (!existsSync(join(ROOT, controller, 'tasks'))) return `no cgroup v1 ${controller} controller at ${join(ROOT, controller)}`;
  return undefined;
}

export interface Cgroup {
  /** Moves processes (and so the children they start later) into the cgroup. */
  add(pids: number[]): Promise<void>;
  /** CFS periods so far, and how many of them ran out of quota. */
  cpuStat(): Promise<{ periods: number; throttled: number }>;
  remove(): Promise<void>;
}

/** A cgroup named `name` limited to `cpu` (a Kubernetes quantity, e.g. 400m) and `memory` (e.g. 512Mi). */
export async function createCgroup(name: string, cpu: string, memory: string): Promise<Cgroup> {
  const cpuDir = join(ROOT, 'cpu', name);
  const memoryDir = join(ROOT, 'memory', name);
  await mkdir(cpuDir, { recursive: true });
  await mkdir(memoryDir, { recursive: true });
  await writeFile(join(cpuDir, 'cpu.cfs_period_us'), String(PERIOD_US));
  await writeFile(join(cpuDir, 'cpu.cfs_quota_us'), String(Math.round(cpuCores(cpu) * PERIOD_US)));
  await writeFile(join(memoryDir, 'memory.limit_in_bytes'), String(memoryBytes(memory)));
  return {
    async add(pids) {
      for (const pid of pids) {
        await writeFile(join(cpuDir, 'cgroup.procs'), String(pid));
        await writeFile(join(memoryDir, 'cgroup.procs'), String(pid));
      }
    },
    cpuStat: () => readCpuStat(cpuDir),
    async remove() {
      // A cgroup can go once its processes have (they return to the parent's).
      for (const dir of [cpuDir, memoryDir]) {
        const procs = (await readFile(join(dir, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean);
        for (const pid of procs) await writeFile(join(dir, '..', 'cgroup.procs'), pid).catch(() => undefined);
        await rmdir(dir).catch(() => undefined);
      }
    },
  };
}

/** nr_periods and nr_throttled of a cgroup's cpu.stat. */
export async function readCpuStat(cpuDir: string): Promise<{ periods: number; throttled: number }> {
  const stat = await readFile(join(cpuDir, 'cpu.stat'), 'utf8');
  const value = (key: string) => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(stat)?.[1] ?? Number.NaN);
  return { periods: value('nr_periods'), throttled: value('nr_throttled') };
}

/** The cpu controller folder of the cgroup a process is in (a container's, for its main process). */
export async function cpuCgroupOf(pid: number): Promise<string> {
  const lines = (await readFile(`/proc/${pid}/cgroup`, 'utf8')).split('\n');
  const line = lines.find((candidate) => /^\d+:([^:]*,)?cpu(,[^:]*)?:/.test(candidate));
  if (line === undefined) throw new Error(`no cpu cgroup for process ${pid}`);
  return join(ROOT, 'cpu', line.slice(line.lastIndexOf(':') + 1));
}
