import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHART_DIR } from './helm.js';

// The Grafana dashboards of wiki-chart/dashboards/, and Grafana's interpolation of
// their queries, so the stack test can run each one as Grafana would.

/** The uid of the Prometheus data source the chart provisions, Grafana's default: the dashboards' $datasource variable picks it. */
export const DASHBOARD_DATASOURCE_UID = 'wiki-prometheus';

interface GrafanaTarget {
  refId: string;
  expr: string;
  datasource: unknown;
  legendFormat?: string;
}

export interface GrafanaPanel {
  id: number;
  type: string;
  title: string;
  description: string;
  datasource: unknown;
  fieldConfig: { defaults: { unit?: string } };
  targets: GrafanaTarget[];
  /** A row's panels, when the row is collapsed. */
  panels?: GrafanaPanel[];
}

export interface GrafanaVariable {
  name: string;
  type: string;
  datasource: unknown;
  query: { query: string } | string;
  includeAll?: boolean;
  allValue?: string;
}

export interface GrafanaDashboard {
  uid: string;
  title: string;
  panels: GrafanaPanel[];
  templating: { list: GrafanaVariable[] };
}

export function dashboardFiles(): Array<{ name: string; text: string; dashboard: GrafanaDashboard }> {
  const dir = join(CHART_DIR, 'dashboards');
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => {
      const text = readFileSync(join(dir, name), 'utf8');
      return { name, text, dashboard: JSON.parse(text) as GrafanaDashboard };
    });
}

/** Every panel that queries, rows' nested panels included. */
export function panelsOf(dashboard: GrafanaDashboard): GrafanaPanel[] {
  return dashboard.panels.flatMap((panel) => (panel.type === 'row' ? (panel.panels ?? []) : [panel]));
}

export interface Interpolation {
  /** The Prometheus data source's scrape interval (Grafana's "scrape interval" setting). */
  scrapeIntervalSeconds: number;
  /** $__interval: the time range divided by the panel's width in points, at least the scrape interval. */
  intervalSeconds: number;
  /** Template variables, as Grafana would fill them: a value, or a multi-value variable's regex. */
  variables: Record<string, string>;
}

/**
 * A query as Grafana sends it to Prometheus: $__rate_interval is
 * max($__interval + scrape interval, 4 × scrape interval), as Grafana documents it;
 * $__interval and the template variables ($name and ${name}) are replaced. Anything
 * else that looks like a variable is left alone, as Grafana does (e.g. label_replace's
 * "${1}"). Throws when a macro or variable the dashboard uses is left unreplaced.
 */
export function interpolate(expr: string, { scrapeIntervalSeconds, intervalSeconds, variables }: Interpolation): string {
  const rateInterval = Math.max(intervalSeconds + scrapeIntervalSeconds, 4 * scrapeIntervalSeconds);
  let result = expr.replaceAll('$__rate_interval', `${rateInterval}s`).replaceAll('$__interval', `${intervalSeconds}s`);
  for (const [name, value] of Object.entries(variables)) {
    result = result.replaceAll(`\${${name}}`, value).replace(new RegExp(`\\$${name}\\b`, 'g'), value);
  }
  const left = /\$(__\w+|[A-Za-z_]\w*)/.exec(result);
  if (left !== null) throw new Error(`"${left[0]}" is not replaced in ${expr}`);
  return result;
}

/** The query of a template variable: label_values(metric, label) becomes a PromQL query whose series carry the label. */
export function variableQuery(variable: GrafanaVariable): { promql: string; label: string } {
  const text = typeof variable.query === 'string' ? variable.query : variable.query.query;
  const match = /^label_values\((.+),\s*(\w+)\)$/.exec(text.trim());
  if (match === null) throw new Error(`$${variable.name}: only label_values(metric, label) queries are supported here, got ${text}`);
  return { promql: `count by (${match[2]}) (${match[1]})`, label: match[2]! };
}
