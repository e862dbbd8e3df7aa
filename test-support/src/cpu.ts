import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

// CPU time as Linux's /proc counts it, for the benchmarks (npm run bench, bench:capacity).

/** /proc's unit of CPU time: clock ticks per second (USER_HZ, 100 on Linux). */
export const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString());

/** CPU time the processes have used so far, in seconds (utime + stime, all their threads). */
export function cpuSecondsOf(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process has exited since it was listed
    }
  }
  return ticks / CLOCK_TICKS;
}

/** CPU time the whole machine has used so far, in seconds (every core, all but idle and iowait). */
export function machineCpuSeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields as [number, number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS;
}

/**
 * CPU time a server and all its children have used so far, in seconds: its own, the
 * children it has reaped (cutime + cstime: a PostgreSQL backend that exited when its
 * connection closed is counted there, once the postmaster has waited for it), and the
 * children alive now. Summing the live processes alone would lose every exited one's
 * CPU between two readings.
 */
export function cpuSecondsOfTree(parent: number): number {
  const fields = readFileSync(`/proc/${parent}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  const children = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return ticks / CLOCK_TICKS + cpuSecondsOf(children);
}
