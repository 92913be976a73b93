/**
 * The accounting service's user report (platform_tools/accounting/report.py `user_report`),
 * as the server's `parhelion/spend` route passes it on, and the sentences made from it.
 *
 * Kept free of JupyterLab imports: what the status bar, the notifications and the panel say
 * is decided here, once, from the same numbers the hub's spend page shows.
 */

export interface IBudget {
  usd: number;
  period: string | null;
  period_start: string;
  resets_at: string;
  spent_usd: number;
  left_usd: number;
  percent: number;
  warnings_reached: number[];
  capped: boolean;
  stops_at?: string | null;
}

export interface IGroupTotal {
  group: string;
  usd: number;
  spent_usd: number;
  percent: number;
  capped: boolean;
  stops_at?: string | null;
}

export interface IRunning {
  kind: string;
  description: string;
  rate_per_hour_usd: number;
  since: string;
  cost_so_far_usd: number;
}

export interface IReport {
  user: string;
  budget: IBudget | null;
  group_totals: IGroupTotal[];
  running: IRunning[];
  running_rate_per_hour_usd: number;
}

/** What `GET parhelion/spend` answers: the report, or the sentence saying why not. */
export interface ISpendAnswer {
  user: string | null;
  spend_page: string | null;
  fetched_at: string;
  report?: IReport;
  error?: string;
}

/** Cents for budgets of a dollar or more; tenths of a cent below (a class's test budget). */
export function usd(value: number, budget: number | null = null): string {
  const digits = budget !== null && budget < 1 ? 4 : 2;
  return `$${value.toFixed(digits)}`;
}

/** Rates are small numbers: always to a hundredth of a cent, as the spend page shows them. */
export function rate(value: number): string {
  return `$${value.toFixed(4)}/h`;
}

export type Level = 'ok' | 'warn' | 'capped' | 'none';

/** The status bar's colour: capped (own or a group's total), a warning reached, or fine. */
export function level(report: IReport): Level {
  if (capped(report).length) {
    return 'capped';
  }
  if (report.budget === null) {
    return 'none';
  }
  return report.budget.warnings_reached.length ? 'warn' : 'ok';
}

/** A cap in force: whose, and when the enforcer stops what runs (null: it does not, or not yet known). */
export interface ICap {
  scope: string; // "user" or "group:<name>"
  whose: string;
  stopsAt: Date | null;
}

export function capped(report: IReport): ICap[] {
  const caps: ICap[] = [];
  if (report.budget?.capped) {
    caps.push({ scope: 'user', whose: 'your budget', stopsAt: when(report.budget.stops_at) });
  }
  for (const group of report.group_totals ?? []) {
    if (group.capped) {
      caps.push({
        scope: `group:${group.group}`,
        whose: `group ${group.group}'s total budget`,
        stopsAt: when(group.stops_at)
      });
    }
  }
  return caps;
}

/** The earliest stop among the caps in force (what the user has to beat). */
export function firstStop(report: IReport): ICap | null {
  const stopping = capped(report).filter(cap => cap.stopsAt !== null);
  stopping.sort((a, b) => a.stopsAt!.getTime() - b.stopsAt!.getTime());
  return stopping[0] ?? null;
}

function when(text: string | null | undefined): Date | null {
  return text ? new Date(text) : null;
}

/** "4 min 05 s", or "now" once the time has come. */
export function timeLeft(until: Date, now: Date = new Date()): string {
  const seconds = Math.max(0, Math.round((until.getTime() - now.getTime()) / 1000));
  if (seconds === 0) {
    return 'now';
  }
  const minutes = Math.floor(seconds / 60);
  const rest = seconds % 60;
  if (minutes >= 60) {
    return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }
  return minutes ? `${minutes} min ${String(rest).padStart(2, '0')} s` : `${rest} s`;
}

export function clock(at: Date): string {
  return at.toISOString().slice(11, 16) + ' UTC';
}

/** The status bar's text: "$1.23 / $5.00 · $3.77 left", or the cap's countdown. */
export function statusText(report: IReport, now: Date = new Date()): string {
  const stop = firstStop(report);
  const budget = report.budget;
  const spend = budget
    ? `${usd(budget.spent_usd, budget.usd)} / ${usd(budget.usd, budget.usd)}`
    : `${rate(report.running_rate_per_hour_usd)} · no budget`;
  if (stop) {
    return `${spend} · capped: stops in ${timeLeft(stop.stopsAt!, now)}`;
  }
  if (capped(report).length) {
    return `${spend} · capped`;
  }
  return budget ? `${spend} · ${usd(budget.left_usd, budget.usd)} left` : spend;
}

/** The status bar's tooltip: the whole sentence. */
export function statusTitle(report: IReport): string {
  const budget = report.budget;
  const lines = budget
    ? [
        `Spent ${usd(budget.spent_usd, budget.usd)} of your ${usd(budget.usd, budget.usd)} ` +
          `${budget.period ?? ''} budget (${budget.percent.toFixed(0)}%), ` +
          `${usd(budget.left_usd, budget.usd)} left; resets ${budget.resets_at.slice(0, 16).replace('T', ' ')} UTC.`
      ]
    : ['No budget caps your spend.'];
  lines.push(`Running now: ${rate(report.running_rate_per_hour_usd)}. Click for details.`);
  return lines.join('\n');
}

/** A threshold's notification (JupyterLab truncates messages at 140 characters). */
export function thresholdMessage(mark: number, budget: IBudget): string {
  return (
    `Parhelion: ${mark}% of your ${usd(budget.usd, budget.usd)} ${budget.period ?? ''} budget spent; ` +
    `${usd(budget.left_usd, budget.usd)} left.`
  ).replace(/ {2,}/g, ' ');
}

/** The cap's notification: when the work stops, and the time left in the grace. */
export function capMessage(cap: ICap, now: Date = new Date()): string {
  if (cap.stopsAt === null) {
    return `Parhelion: ${cap.whose} is used up; new servers and clusters are refused.`;
  }
  return (
    `Parhelion: ${cap.whose} is used up. Your server and Dask clusters stop in ` +
    `${timeLeft(cap.stopsAt, now)} (${clock(cap.stopsAt)}): save your work.`
  );
}
