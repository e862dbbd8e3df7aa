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
