import { useCallback, useEffect, useRef, useState } from 'react';
import { Box, Text, useApp } from 'ink';
import { KeyOwner, KeyboardProvider, type KeyHandler } from './keyboard.tsx';
import { useLatest } from './use-latest.ts';
import type { ApiClient } from '../../src/api/client.ts';
import { Catalog } from './Catalog.tsx';
import { toProblem, type Problem } from './errors.ts';
import { useFollow, type Link } from './follow.ts';
import { Footer } from './Footer.tsx';
import type { FormState, launchBody } from './form-model.ts';
import { Header } from './Header.tsx';
import { HelpOverlay, helpLines, helpRows } from './HelpOverlay.tsx';
import { scrollKey } from './Scroller.tsx';
import { SCREEN_TITLES, type ScreenName } from './keys.ts';
import { LaunchForm } from './LaunchForm.tsx';
import { Notice } from './Notice.tsx';
import { PlanReview } from './PlanReview.tsx';
import { RunsList } from './RunsList.tsx';
import { inInbox, isApprover } from './run-model.ts';
import { RunView } from './RunView.tsx';
import type { Me, PlanInfo, RunbookInfo } from './types.ts';
import { useSize } from './use-size.ts';

type Tab = 'catalog' | 'runs' | 'inbox';
const TABS: readonly Tab[] = ['catalog', 'runs', 'inbox'];

type Screen =
  | { readonly kind: 'home' }
  | { readonly kind: 'form'; readonly runbook: RunbookInfo }
  | {
      readonly kind: 'plan';
      readonly runbook: RunbookInfo;
      readonly body: ReturnType<typeof launchBody>;
      readonly plan: PlanInfo;
    }
  | { readonly kind: 'run'; readonly id: string };

export interface AppProps {
  readonly api: ApiClient;
  /** Open this run first (e.g. `mechanic <execution-id>` in the future, and tests). */
  readonly openRun?: string;
  readonly now?: () => number;
}

/** How often list screens may re-read after live events: a burst of events is one refresh. */
const REFRESH_MS = 250;

/**
 * The TUI: header (who, where, live or not), the screen in front, faults in place, and the
 * footer with that screen's keys. It learns about changes only from the live event stream.
 */
export function App({ api, openRun, now }: AppProps) {
  const { exit } = useApp();
  const { columns, rows } = useSize();
  const [me, getMe, setMe] = useLatest<Me | undefined>(undefined);
  const [meProblem, setMeProblem] = useState<Problem | undefined>();
  const [meTries, setMeTries] = useState(0);
  // What decides where a key goes is read through refs (useLatest): a key right behind another
  // must see what the first one did, before React has drawn it.
  const [tab, getTab, setTab] = useLatest<Tab>('catalog');
  const [stack, getStack, setStack] = useLatest<readonly Screen[]>(
    openRun ? [{ kind: 'home' }, { kind: 'run', id: openRun }] : [{ kind: 'home' }],
  );
  const [help, getHelp, setHelp] = useLatest(false);
  const [helpTop, getHelpTop, setHelpTop] = useLatest(0);
  const [, getTyping, setTypingState] = useLatest(false);
  const [runMode, setRunMode] = useState<ScreenName>('run');
  const [changes, setChanges] = useState(0);
  const [runLink, setRunLink] = useState<Link | undefined>();
  const forms = useRef(new Map<string, FormState>());
  /** Runs whose started plan differs from the reviewed one, and in what. */
  const notices = useRef(new Map<string, readonly string[]>());
  const refresh = useRef<NodeJS.Timeout | undefined>(undefined);
  const setTyping = useCallback((t: boolean) => setTypingState(t), []);

  useEffect(() => {
    let live = true;
    api
      .call('me')
      .then(({ user }) => {
        if (!live) return;
        setMe(user);
        setMeProblem(undefined);
      })
      .catch((e: unknown) => live && setMeProblem(toProblem(e)));
    return () => {
      live = false;
    };
  }, [api, meTries]);

  const onRecord = useCallback(() => {
    refresh.current ??= setTimeout(() => {
      refresh.current = undefined;
      setChanges((n) => n + 1);
    }, REFRESH_MS);
  }, []);
  useEffect(() => () => clearTimeout(refresh.current), []);
  const link = useFollow(api, me ? 'all' : undefined, onRecord);
  const inbox = useInboxCount(api, me, changes);

  const top = stack[stack.length - 1]!;
  const back = useCallback(() => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s)), []);
  const push = useCallback((screen: Screen) => setStack((s) => [...s, screen]), []);

  const screenName: ScreenName = top.kind === 'home' ? tab : top.kind === 'run' ? runMode : top.kind;

  const width = columns;
  // One row is left free: a frame as tall as the terminal would be redrawn from a cleared
  // screen each time (tearing); one row shorter is updated in place.
  const height = Math.max(8, rows - 1);
  const bodyHeight = height - 2;

  // The app's own keys (help, tabs, quit), heard on every screen before the screen in front.
  const appKeys: KeyHandler = (input, key) => {
    if (getHelp()) {
      const next = scrollKey(getHelpTop(), helpLines(screenName).length, helpRows(bodyHeight), '', key);
      if (next !== undefined) return setHelpTop(next);
      return setHelp(false);
    }
    if (getTyping()) return;
    if (input === '?') {
      setHelpTop(0);
      return setHelp(true);
    }
    if (!getMe()) {
      if (input === 'r') setMeTries((n) => n + 1);
      if (input === 'q' || key.escape) exit();
      return;
    }
    if (getStack().at(-1)?.kind !== 'home') return;
    if (input === 'q') return exit();
    const i = ['1', '2', '3'].indexOf(input);
    if (i >= 0) return setTab(TABS[i]!);
    if (key.tab) setTab((t) => TABS[(TABS.indexOf(t) + (key.shift ? 2 : 1)) % 3]!);
  };
  /** The screen in front, as keys have left it: the one owner of the next key. */
  const front = useCallback((): string | undefined => {
    if (!getMe() || getHelp()) return undefined;
    return ownerOf(getStack().at(-1)!, getTab());
  }, [getMe, getHelp, getStack, getTab]);

  const active = !help;

  let body;
  if (!me) {
    body = (
      <Box flexDirection="column">
        {meProblem ? (
          <>
            <Notice problem={meProblem} width={width} />
            <Text>r: try again · q: quit</Text>
          </>
        ) : (
          <Text>signing in…</Text>
        )}
      </Box>
    );
  } else if (help) {
    body = <HelpOverlay width={width} height={bodyHeight} screen={screenName} top={helpTop} />;
  } else if (top.kind === 'home') {
    const common = { width, height: bodyHeight - 1, active, setTyping };
    body = (
      <Box flexDirection="column">
        <Text wrap="truncate-end">
          {TABS.map((t, i) => (
            <Text key={t} inverse={t === tab} bold={t === tab}>
              {` ${i + 1} ${SCREEN_TITLES[t]} `}
            </Text>
          ))}
        </Text>
        {tab === 'catalog' ? (
          <Catalog {...common} api={api} changes={changes} onLaunch={(runbook) => push({ kind: 'form', runbook })} />
        ) : (
          <RunsList
            {...common}
            key={tab}
            api={api}
            me={me}
            mode={tab === 'runs' ? 'mine' : 'inbox'}
            changes={changes}
            onOpen={(id) => push({ kind: 'run', id })}
          />
        )}
      </Box>
    );
  } else if (top.kind === 'form') {
    const initial = forms.current.get(top.runbook.name);
    body = (
      <LaunchForm
        width={width}
        height={bodyHeight}
        active={active}
        setTyping={setTyping}
        api={api}
        runbook={top.runbook}
        {...(initial ? { initial } : {})}
        onChange={(f) => forms.current.set(top.runbook.name, f)}
        onBack={back}
        onPlanned={({ body: launch, plan }) => push({ kind: 'plan', runbook: top.runbook, body: launch, plan })}
      />
    );
  } else if (top.kind === 'plan') {
    body = (
      <PlanReview
        width={width}
        height={bodyHeight}
        active={active}
        setTyping={setTyping}
        api={api}
        body={top.body}
        plan={top.plan}
        onBack={back}
        onLaunched={(id, changed) => {
          forms.current.delete(top.runbook.name);
          if (changed.length > 0) notices.current.set(id, changed);
          setTab('runs');
          setStack([{ kind: 'home' }, { kind: 'run', id }]);
        }}
      />
    );
  } else {
    body = (
      <RunView
        key={top.id}
        width={width}
        height={bodyHeight}
        active={active}
        setTyping={setTyping}
        api={api}
        me={me}
        executionId={top.id}
        {...changedOf(notices.current.get(top.id))}
        onBack={() => {
          setRunLink(undefined);
          setRunMode('run');
          back();
        }}
        onMode={setRunMode}
        onLink={setRunLink}
        {...(now ? { now } : {})}
      />
    );
  }

  const shownLink = top.kind === 'run' && runLink ? worst(link, runLink) : link;
  return (
    <KeyboardProvider front={front} appKeys={appKeys}>
      <Box flexDirection="column" width={width} height={height} overflow="hidden">
        <Header
          user={me ?? { id: '…', roles: [] }}
          title={top.kind === 'home' ? SCREEN_TITLES[tab] : SCREEN_TITLES[top.kind]}
          link={shownLink}
          width={width}
          {...(inbox !== undefined ? { inboxCount: inbox } : {})}
        />
        <Box flexDirection="column" height={bodyHeight} overflow="hidden">
          {me && !help ? <KeyOwner owner={ownerOf(top, tab)}>{body}</KeyOwner> : body}
        </Box>
        <Footer screen={help ? 'dialog' : screenName} width={width} />
      </Box>
    </KeyboardProvider>
  );
}

/** The key owner of a screen: each tab, the form, the plan review, each run. */
function ownerOf(screen: Screen, tab: Tab): string {
  return screen.kind === 'home' ? `home:${tab}` : screen.kind === 'run' ? `run:${screen.id}` : screen.kind;
}

/**
 * How many runs wait for my approval, for the header on every screen. Read when signed in and
 * again after live events (`changes` is bumped by the event stream), never on a timer. Undefined
 * for someone who cannot approve, or while unknown.
 */
function useInboxCount(api: ApiClient, me: Me | undefined, changes: number): number | undefined {
  const [count, setCount] = useState<number | undefined>();
  const approver = me !== undefined && isApprover(me);
  useEffect(() => {
    if (!me || !approver) return undefined;
    let live = true;
    api
      .call('listExecutions', { query: { status: 'awaiting_approval', limit: 200 } })
      .then(({ executions }) => live && setCount(executions.filter((e) => inInbox(e, me)).length))
      // The count is a hint; the Inbox tab says what went wrong when it is opened.
      .catch(() => live && setCount(undefined));
    return () => {
      live = false;
    };
  }, [api, me, approver, changes]);
  return approver ? count : undefined;
}

/** Two stream links as one: the worse of them is what the operator needs to know. */
function worst(a: Link, b: Link): Link {
  const rank = { live: 0, connecting: 1, lost: 2, failed: 3 } as const;
  return rank[b.state] > rank[a.state] ? b : a;
}

function changedOf(changed: readonly string[] | undefined): { changedSinceReview?: readonly string[] } {
  return changed ? { changedSinceReview: changed } : {};
}
