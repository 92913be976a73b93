/**
 * The status-bar item (spend, budget, what is left, coloured at the thresholds) and the
 * panel (what runs now and its $/hour). Both only draw the last answer; the plugin polls.
 * Every text from the report goes in as text, never as HTML (descriptions name clusters).
 */

import { Widget } from '@lumino/widgets';

import {
  capped,
  clock,
  firstStop,
  ISpendAnswer,
  level,
  rate,
  statusText,
  statusTitle,
  timeLeft,
  usd
} from './report';

const LEVELS = ['ok', 'warn', 'capped', 'none', 'error'];

export class SpendStatus extends Widget {
  constructor(onClick: () => void) {
    super();
    this.id = 'parhelion-spend-status';
    this.addClass('parhelion-SpendStatus');
    this.node.textContent = 'Spend …';
    this.node.title = 'Your spend and budget (Parhelion)';
    this.node.addEventListener('click', onClick);
    // the countdown of a cap's grace moves every second, between polls
    this.ticker = window.setInterval(() => this.draw(), 1000);
  }

  setAnswer(answer: ISpendAnswer): void {
    this.answer = answer;
    this.draw();
  }

  dispose(): void {
    window.clearInterval(this.ticker);
    super.dispose();
  }

  private draw(): void {
    const answer = this.answer;
    if (answer === null) {
      return;
    }
    for (const name of LEVELS) {
      this.removeClass(`parhelion-mod-${name}`);
    }
    if (!answer.report) {
      this.addClass('parhelion-mod-error');
      this.node.textContent = 'Spend: not known';
      this.node.title = answer.error ?? 'The accounting service did not answer.';
      return;
    }
    this.addClass(`parhelion-mod-${level(answer.report)}`);
    this.node.textContent = statusText(answer.report);
    this.node.title = statusTitle(answer.report);
  }

  private answer: ISpendAnswer | null = null;
  private readonly ticker: number;
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text = '',
  className = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) {
    node.className = className;
  }
  return node;
}

export class SpendPanel extends Widget {
  constructor() {
    super();
    this.id = 'parhelion-spend-panel';
    this.addClass('parhelion-SpendPanel');
    this.title.caption = 'Spend and what runs now';
    this.title.label = 'Spend';
    this.node.tabIndex = 0;
    this.node.appendChild(element('p', 'Asking the accounting service …'));
  }

  setAnswer(answer: ISpendAnswer): void {
    const node = this.node;
    node.replaceChildren();
    const report = answer.report;
    node.appendChild(element('h2', report ? `Spend of ${report.user}` : 'Spend'));
    if (!report) {
      node.appendChild(element('p', answer.error ?? 'The accounting service did not answer.', 'parhelion-error'));
      this.addLink(answer);
      return;
    }
    const budget = report.budget;
    if (budget) {
      const line = element('p', '', 'parhelion-budget');
      line.id = 'parhelion-panel-budget';
      line.textContent =
        `${usd(budget.spent_usd, budget.usd)} of ${usd(budget.usd, budget.usd)} this ` +
        `${budget.period ?? 'period'} (${budget.percent.toFixed(0)}%), ` +
        `${usd(budget.left_usd, budget.usd)} left; resets ${budget.resets_at.slice(0, 10)}.`;
      node.appendChild(line);
    } else {
      node.appendChild(element('p', 'No budget caps your spend.'));
    }
    for (const group of report.group_totals) {
      node.appendChild(
        element(
          'p',
          `Group ${group.group}: ${usd(group.spent_usd, group.usd)} of ${usd(group.usd, group.usd)} ` +
            `(${group.percent.toFixed(0)}%)${group.capped ? ', capped' : ''}.`
        )
      );
    }
    const stop = firstStop(report);
    if (stop) {
      node.appendChild(
        element(
          'p',
          `${capitalised(stop.whose)} is used up: what runs stops at ${clock(stop.stopsAt!)} ` +
            `(in ${timeLeft(stop.stopsAt!)}). New servers and clusters are refused.`,
          'parhelion-error'
        )
      );
    } else if (capped(report).length) {
      node.appendChild(element('p', 'A cap is reached: new servers and clusters are refused.', 'parhelion-error'));
    }
    node.appendChild(element('h3', 'Running now'));
    const table = element('table', '', 'parhelion-running');
    table.id = 'parhelion-running';
    const head = table.createTHead().insertRow();
    for (const title of ['What', 'Rate', 'So far']) {
      head.appendChild(element('th', title));
    }
    const body = table.createTBody();
    for (const item of report.running) {
      const row = body.insertRow();
      const what = element('td', item.description || item.kind);
      what.appendChild(element('div', `since ${item.since.slice(11, 16)} UTC`, 'parhelion-since'));
      row.appendChild(what);
      row.appendChild(element('td', rate(item.rate_per_hour_usd)));
      row.appendChild(element('td', usd(item.cost_so_far_usd, 0)));
    }
    if (!report.running.length) {
      const row = body.insertRow();
      const cell = element('td', 'Nothing runs.');
      cell.colSpan = 3;
      row.appendChild(cell);
    }
    node.appendChild(table);
    const total = element('p', `In all: ${rate(report.running_rate_per_hour_usd)}`, 'parhelion-total');
    total.id = 'parhelion-running-rate';
    node.appendChild(total);
    this.addLink(answer);
    node.appendChild(
      element('p', `Updated ${new Date(answer.fetched_at).toISOString().slice(11, 19)} UTC`, 'parhelion-updated')
    );
  }

  private addLink(answer: ISpendAnswer): void {
    if (!answer.spend_page) {
      return;
    }
    const link = element('a', 'The full spend page (days, events)');
    link.href = answer.spend_page;
    link.target = '_blank';
    link.rel = 'noopener';
    const line = element('p');
    line.appendChild(link);
    this.node.appendChild(line);
  }
}
