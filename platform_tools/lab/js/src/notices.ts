/**
 * Budget notifications, each told once per page: a warning threshold when it is crossed, a
 * cap when it is reached (then the same notification counts down the grace, updated in
 * place, rather than a new one every poll).
 */

import { Notification } from '@jupyterlab/apputils';

import { capMessage, capped, IReport, thresholdMessage } from './report';

export class Notices {
  constructor(private readonly openPanel: () => void) {}

  /** Tell what is new in ``report``. On the first report of a page only the highest
   * threshold reached is told (one reminder, not one per threshold). */
  update(report: IReport, now: Date = new Date()): void {
    const budget = report.budget;
    if (budget) {
      // a cap reached in the same answer says more than the thresholds under it
      const fresh = budget.warnings_reached.filter(mark => {
        const key = `${budget.period_start}:user:${mark}`;
        const isNew = !this.told.has(key);
        this.told.add(key);
        return isNew && mark < 100 && !budget.capped; // 100% is the cap's own notification
      });
      const mark = fresh.length ? Math.max(...fresh) : null;
      if (mark !== null) {
        Notification.warning(thresholdMessage(mark, budget), {
          autoClose: false,
          actions: [{ label: 'Show spend', callback: () => this.openPanel() }]
        });
      }
    }
    const nowCapped = new Set<string>();
    for (const cap of capped(report)) {
      nowCapped.add(cap.scope);
      const message = capMessage(cap, now);
      const id = this.caps.get(cap.scope);
      if (id !== undefined) {
        // counts down in place; once the person dismissed it, it stays dismissed (the
        // status bar goes on counting)
        Notification.update({ id, message, type: 'error', autoClose: false });
      } else {
        this.caps.set(
          cap.scope,
          Notification.error(message, {
            autoClose: false,
            actions: [{ label: 'Show spend', callback: () => this.openPanel() }]
          })
        );
      }
    }
    for (const [scope, id] of this.caps) {
      if (!nowCapped.has(scope)) {
        // a new period, or a raised budget: the cap is gone
        Notification.dismiss(id);
        this.caps.delete(scope);
      }
    }
  }

  private readonly told = new Set<string>();
  private readonly caps = new Map<string, string>();
}
