/**
 * Parhelion in JupyterLab: this period's spend in the status bar, a notification when a
 * warning threshold is crossed or a cap will stop the user's work, and a panel with what
 * runs now and its $/hour.
 *
 * It polls this server's `parhelion/spend` route (platform_tools/lab/handlers.py), which
 * asks the accounting service as the server's user: the page holds no token and names
 * no user. The poll's interval is a setting (`pollSeconds`); it backs off while the route
 * fails and rests while the page is hidden.
 */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Poll } from '@lumino/polling';

import { Notices } from './notices';
import { ISpendAnswer } from './report';
import { SpendPanel, SpendStatus } from './widgets';

const PLUGIN = '@parhelion/lab:plugin';
const OPEN = 'parhelion:show-spend';
const DEFAULT_POLL_SECONDS = 20;

async function fetchSpend(settings: ServerConnection.ISettings): Promise<ISpendAnswer> {
  const url = URLExt.join(settings.baseUrl, 'parhelion', 'spend');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, {}, settings);
  } catch (error) {
    return { user: null, spend_page: null, fetched_at: new Date().toISOString(), error: String(error) };
  }
  try {
    return (await response.json()) as ISpendAnswer;
  } catch {
    return {
      user: null,
      spend_page: null,
      fetched_at: new Date().toISOString(),
      error: `This server answered HTTP ${response.status} without a report (is the Parhelion server extension enabled?)`
    };
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN,
  description: 'Spend in the status bar, budget notifications and what runs now (Parhelion).',
  autoStart: true,
  optional: [IStatusBar, ISettingRegistry, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    statusBar: IStatusBar | null,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null
  ) => {
    const serverSettings = app.serviceManager.serverSettings;
    const panel = new SpendPanel();
    const open = () => {
      if (!panel.isAttached) {
        app.shell.add(panel, 'right', { rank: 900 });
      }
      app.shell.activateById(panel.id);
    };
    app.commands.addCommand(OPEN, {
      label: 'Show My Spend and What Runs Now',
      caption: 'This period’s spend, the budget, and what runs now at what $/hour',
      execute: open
    });
    palette?.addItem({ command: OPEN, category: 'Parhelion' });

    const status = new SpendStatus(() => void app.commands.execute(OPEN));
    statusBar?.registerStatusItem(PLUGIN, { item: status, align: 'left', rank: 50 });
    const notices = new Notices(open);

    const poll = new Poll<void, Error>({
      name: PLUGIN,
      frequency: { interval: DEFAULT_POLL_SECONDS * 1000, backoff: true, max: 300 * 1000 },
      standby: 'when-hidden',
      factory: async () => {
        const answer = await fetchSpend(serverSettings);
        status.setAnswer(answer);
        panel.setAnswer(answer);
        if (!answer.report) {
          throw new Error(answer.error ?? 'no report'); // the poll backs off
        }
        notices.update(answer.report);
      }
    });
    if (settingRegistry) {
      void settingRegistry.load(PLUGIN).then(settings => {
        const apply = () => {
          const seconds = Math.max(2, Number(settings.get('pollSeconds').composite) || DEFAULT_POLL_SECONDS);
          poll.frequency = { ...poll.frequency, interval: seconds * 1000 };
        };
        apply();
        settings.changed.connect(apply);
      });
    }
    void app.restored.then(() => poll.refresh()); // the first answer at once, not after an interval
  }
};

export default plugin;
