import { pino, type Logger } from 'pino';

/** JSON lines on stdout, one object per event: what log collectors expect from a container. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'wiki-service' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
