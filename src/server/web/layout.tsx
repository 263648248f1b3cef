/** @jsxImportSource hono/jsx */
/**
 * The frame of every page of the reporting UI: a skip link, a banner with the signed-in person and
 * sign-out, the navigation, the main landmark. No external assets: the stylesheet and the one
 * small script are served by this server (/ui/assets/*), so the pages work offline and under a
 * strict Content-Security-Policy (scripts only from this origin).
 */
import type { HtmlEscapedString } from 'hono/utils/html';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { User } from '../../authz/users.ts';

/** The sections of the UI, in the order the navigation shows them. */
export const NAV: readonly { readonly href: string; readonly label: string }[] = [
  { href: '/ui/runs', label: 'Runs' },
  { href: '/ui/approvals', label: 'Approvals' },
  { href: '/ui/runbooks', label: 'Runbooks' },
  { href: '/ui/search', label: 'Search' },
  { href: '/ui/reports', label: 'Reports' },
  { href: '/ui/exports', label: 'Exports' },
];

export interface PageProps {
  readonly title: string;
  readonly user: User;
  readonly children?: unknown;
  /** The path of this page, so the navigation can mark where the reader is (aria-current). */
  readonly path?: string;
  /** Loads /ui/assets/live.js, which follows the event stream named by `data-live` on <main>. */
  readonly live?: string;
}

/** One page of the UI. Text passed in children is escaped by JSX; nothing here trusts its input. */
export function Page(props: PageProps) {
  const here = props.path ?? '';
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} — mechanic`}</title>
        <link rel="stylesheet" href="/ui/assets/mechanic.css" />
        {props.live !== undefined ? <script src="/ui/assets/live.js" defer></script> : null}
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="banner">
          <span class="brand">mechanic</span>
          <nav aria-label="Sections">
            <ul>
              {NAV.map((n) => (
                <li>
                  <a href={n.href} aria-current={here === n.href || here.startsWith(`${n.href}/`) ? 'page' : undefined}>
                    {n.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          <form class="who" method="post" action="/auth/logout">
            <span>
              Signed in as <strong>{props.user.id}</strong>
            </span>{' '}
            <button type="submit">Sign out</button>
          </form>
        </header>
        <main id="main" tabindex={-1} data-live={props.live}>
          <h1>{props.title}</h1>
          {props.children}
        </main>
      </body>
    </html>
  );
}

/** A page for a refusal or a mistake: one sentence saying what is wrong and what to do. */
export function ProblemPage(props: { readonly title: string; readonly sentence: string; readonly user?: User }) {
  if (props.user) {
    return (
      <Page title={props.title} user={props.user}>
        <p role="alert">{props.sentence}</p>
        <p>
          <a href="/ui/runs">Back to the runs</a>
        </p>
      </Page>
    );
  }
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>{`${props.title} — mechanic`}</title>
        <link rel="stylesheet" href="/ui/assets/mechanic.css" />
      </head>
      <body>
        <main id="main">
          <h1>{props.title}</h1>
          <p role="alert">{props.sentence}</p>
        </main>
      </body>
    </html>
  );
}

/**
 * The stylesheet. Visible focus on everything focusable, contrast above WCAG AA, and a print
 * style that drops navigation and forms (and the vote box around its form) and prints link
 * targets, so a printed run is a record.
 */
export const STYLESHEET = `
:root { color-scheme: light; --fg: #1a1a1a; --muted: #4a4a4a; --bg: #ffffff; --line: #c8c8c8; --accent: #0b4f9c; --bad: #a4161a; --good: #1b5e20; --warn: #7a4b00; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid #f5a300; outline-offset: 2px; }
.skip { position: absolute; left: -10000px; top: 0; background: #fff; padding: .5rem 1rem; }
.skip:focus { left: .5rem; z-index: 10; }
.banner { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: .5rem 1rem; border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; }
.banner nav ul { display: flex; gap: 1rem; list-style: none; margin: 0; padding: 0; }
.banner nav a[aria-current=page] { font-weight: 700; text-decoration-thickness: 3px; }
.who { margin-left: auto; }
main { padding: 1rem; max-width: 80rem; }
main:focus { outline: none; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem; border-bottom: 1px solid var(--line); }
th { background: #f2f2f2; }
pre, code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .9rem; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f6f6; padding: .5rem; border: 1px solid var(--line); max-height: 30rem; overflow: auto; }
form.filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: flex-end; margin: 1rem 0; }
form.filters label, .field label { display: block; font-size: .9rem; color: var(--muted); }
input, select, textarea, button { font: inherit; }
input, select, textarea { border: 1px solid #767676; padding: .25rem .4rem; border-radius: 3px; }
button { border: 1px solid var(--accent); background: var(--accent); color: #fff; padding: .3rem .8rem; border-radius: 3px; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
.status { font-weight: 600; }
.status-succeeded, .ok { color: var(--good); }
.status-failed, .status-rejected, .status-expired, .bad { color: var(--bad); }
.status-pending_approval, .status-cancelled, .warn { color: var(--warn); }
.pager { display: flex; gap: 1rem; margin: 1rem 0; }
.muted { color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
ol.timeline { list-style: none; padding: 0; border-left: 3px solid var(--line); }
ol.timeline > li { margin: 0 0 1rem 0; padding-left: 1rem; }
.notice { border: 1px solid var(--line); border-left: 4px solid var(--accent); padding: .5rem 1rem; margin: 1rem 0; }
.live-note { font-size: .9rem; color: var(--muted); }
@media print {
  .banner nav, .who, .skip, form, .pager, .live-note { display: none !important; }
  section:has(#vote-h) { display: none !important; }
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  a[href^="/"]::after { content: " (" attr(href) ")"; font-size: 9pt; color: var(--muted); }
  pre { max-height: none; overflow: visible; }
  tr, li { break-inside: avoid; }
}
`;

/**
 * Progressive enhancement for a page that names an event stream in `data-live` on <main>: when a
 * record arrives the page says so and offers a reload (a screen reader hears it through the live
 * region); without JavaScript the page still works, and its "Refresh" link does the same.
 */
export const LIVE_SCRIPT = `(() => {
  const main = document.getElementById('main');
  const url = main && main.dataset.live;
  if (!url || typeof EventSource === 'undefined') return;
  const note = document.createElement('p');
  note.className = 'live-note';
  note.setAttribute('role', 'status');
  note.setAttribute('aria-live', 'polite');
  note.textContent = 'Following new events live.';
  main.insertBefore(note, main.children[1] || null);
  const source = new EventSource(url);
  let seen = 0;
  source.addEventListener('audit', () => {
    seen++;
    note.textContent = seen + (seen === 1 ? ' new event' : ' new events') + ' since this page was loaded. ';
    if (!note.querySelector('a')) {
      const a = document.createElement('a');
      a.href = location.href;
      a.textContent = 'Reload to see them';
      note.appendChild(a);
    }
  });
  source.onerror = () => { note.textContent = 'Live updates paused; reload the page to see new events.'; };
})();
`;

/** Answers with a whole document: the doctype, then the page (JSX escapes every text it holds). */
export async function html(
  c: { html: (body: string, status?: ContentfulStatusCode) => Response | Promise<Response> },
  node: HtmlEscapedString | Promise<HtmlEscapedString>,
  status: ContentfulStatusCode = 200,
): Promise<Response> {
  return c.html(`<!DOCTYPE html>${String(await node)}`, status);
}
