import { useEffect, useLayoutEffect, useMemo, useState } from 'react';
import { useLatest } from './use-latest.ts';
import { Box, Text } from 'ink';
import { useKeys } from './keyboard.tsx';
import type { ApiClient } from '../../src/api/client.ts';
import { editText } from './edit.ts';
import { toProblem, type Problem } from './errors.ts';
import {
  choicesOf,
  fieldHint,
  fieldProblems,
  formProblems,
  initialForm,
  launchBody,
  paramProblem,
  reasonProblem,
  type FormState,
} from './form-model.ts';
import { Notice } from './Notice.tsx';
import { tone } from './theme.ts';
import { fit, inert } from './text.ts';
import type { PlanInfo, RunbookInfo, ScreenProps } from './types.ts';

export interface LaunchFormProps extends ScreenProps {
  readonly api: ApiClient;
  readonly runbook: RunbookInfo;
  readonly onBack: () => void;
  readonly onPlanned: (planned: {
    readonly body: ReturnType<typeof launchBody>;
    readonly plan: PlanInfo;
    readonly planDigest: string;
  }) => void;
  /** The form's state when coming back from the plan review. */
  readonly initial?: FormState;
  readonly onChange?: (form: FormState) => void;
}

interface Target {
  readonly instanceId: string;
  readonly name?: string;
}

/**
 * One field per parameter, checked as it is typed with the server's own rule, the problem beside
 * the field; the targets narrowed from the list the server resolves; a reason. "Review plan"
 * plans only a form without problems, so nothing invalid reaches the API.
 */
export function LaunchForm(props: LaunchFormProps) {
  const { api, runbook, onBack, onPlanned, width, height, active, setTyping } = props;
  const opened = useMemo(() => initialForm(runbook), [runbook]);
  const [form, getForm, setForm] = useLatest<FormState>(props.initial ?? opened.form);
  // Back from the plan review, the form opens on its submit line: Enter plans it again.
  const [focus, getFocus, setFocus] = useLatest(props.initial ? props.initial.params.length + 2 : 0);
  const [targetCursor, getTargetCursor, setTargetCursor] = useLatest(0);
  const [resolved, getResolved, setResolved] = useLatest<readonly Target[] | undefined>(undefined);
  const [resolving, setResolving] = useState<Problem | 'busy' | undefined>();
  const [problem, setProblem] = useState<Problem | undefined>();
  const [planning, setPlanning] = useState(false);
  const [tried, setTried] = useState(false);

  // Fields: each parameter, then targets, then the reason, then the submit line.
  const TARGETS = form.params.length;
  const REASON = TARGETS + 1;
  const SUBMIT = TARGETS + 2;
  const problems = formProblems(form);
  const paramsValid = form.params.every((f) => paramProblem(f) === undefined);
  const typingField = focus === REASON || (focus < TARGETS && choicesOf(form.params[focus]!.spec) === undefined);

  // Layout effects: the app knows a field has the keyboard before the next key is read.
  useLayoutEffect(() => {
    setTyping(active && typingField);
  }, [active, typingField, setTyping]);
  useLayoutEffect(() => () => setTyping(false), [setTyping]);
  useEffect(() => {
    props.onChange?.(form);
  }, [form]);

  // The targets are resolved by the server (a dry-run plan) once the parameters are valid.
  const resolveKey = paramsValid
    ? JSON.stringify(launchBody(runbook, { params: form.params, reason: 'x' }).params)
    : '';
  useEffect(() => {
    if (!paramsValid || resolved !== undefined) return undefined;
    let live = true;
    setResolving('busy');
    const reason = reasonProblem(form.reason) === undefined ? form.reason : 'resolve targets for the launch form';
    const { targets: _kept, ...body } = launchBody(runbook, { ...form, reason });
    api
      .call('plan', { body })
      .then(({ plan }) => {
        if (!live) return;
        setResolved(plan.targets);
        setResolving(undefined);
      })
      .catch((e: unknown) => live && setResolving(toProblem(e)));
    return () => {
      live = false;
    };
    // Resolved once per set of valid parameters; the reason does not change the targets.
  }, [api, runbook, resolveKey]);

  const setParam = (i: number, text: string) =>
    setForm((f) => ({ ...f, params: f.params.map((p, j) => (j === i ? { ...p, text } : p)) }));

  const toggleTarget = (id: string) => {
    const resolved = getResolved();
    if (!resolved) return;
    setForm((f) => {
      const kept = new Set(f.targets ?? resolved.map((t) => t.instanceId));
      if (kept.has(id)) kept.delete(id);
      else kept.add(id);
      const all = kept.size === resolved.length;
      const { targets: _old, ...rest } = f;
      return all ? rest : { ...rest, targets: resolved.map((t) => t.instanceId).filter((t) => kept.has(t)) };
    });
  };

  const submit = () => {
    setTried(true);
    const form = getForm();
    const problems = formProblems(form);
    const names = Object.keys(problems);
    if (names.length > 0) {
      const first = names[0]!;
      const index =
        first === 'reason' ? REASON : first === 'targets' ? TARGETS : form.params.findIndex((p) => p.name === first);
      setFocus(Math.max(0, index));
      return;
    }
    setPlanning(true);
    setProblem(undefined);
    const body = launchBody(runbook, form);
    api
      .call('plan', { body })
      .then(({ plan, planDigest }) => {
        setPlanning(false);
        onPlanned({ body, plan, planDigest });
      })
      .catch((e: unknown) => {
        setPlanning(false);
        setProblem(toProblem(e));
      });
  };

  useKeys(
    (input, key) => {
      if (planning) return;
      const focus = getFocus();
      const form = getForm();
      const resolved = getResolved();
      if (key.escape) return onBack();
      if (key.upArrow || (key.tab && key.shift)) return setFocus((f) => Math.max(0, f - 1));
      if (key.downArrow || key.tab) return setFocus((f) => Math.min(SUBMIT, f + 1));
      if (key.return) return focus === SUBMIT ? submit() : setFocus((f) => Math.min(SUBMIT, f + 1));
      if (focus < TARGETS) {
        const field = form.params[focus]!;
        const choices = choicesOf(field.spec);
        if (choices) {
          const at = Math.max(0, choices.indexOf(field.text));
          const step = key.leftArrow ? -1 : key.rightArrow || input === ' ' ? 1 : 0;
          if (step) setParam(focus, choices[(at + step + choices.length) % choices.length]!);
          return;
        }
        const next = editText(field.text, input, key);
        if (next !== undefined) setParam(focus, next);
        return;
      }
      if (focus === TARGETS && resolved) {
        if (key.leftArrow) setTargetCursor((c) => Math.max(0, c - 1));
        else if (key.rightArrow) setTargetCursor((c) => Math.min(resolved.length - 1, c + 1));
        else if (input === ' ') {
          const t = resolved[getTargetCursor()];
          if (t) toggleTarget(t.instanceId);
        }
        return;
      }
      if (focus === REASON) {
        const next = editText(form.reason, input, key, 500);
        if (next !== undefined) setForm((f) => ({ ...f, reason: next }));
      }
    },
    { isActive: active },
  );

  const label = (text: string, i: number) => (
    <Text bold={focus === i} inverse={focus === i}>
      {focus === i ? '›' : ' '} {text.padEnd(12)}
    </Text>
  );
  const showProblem = (name: string, i: number) => {
    const p = problems[name];
    // A field's problem shows once it has been visited or typed in, or after a submit attempt.
    if (p === undefined || !(tried || focus === i || touched(form, name, opened.form))) return null;
    // A list's problems are one line per bad item, each naming its index.
    const field = i < form.params.length ? form.params[i] : undefined;
    const lines = field?.spec.type === 'list' ? fieldProblems(field) : [p];
    return lines.map((line, n) => (
      <Text key={n} color={tone('bad')} wrap="truncate-end">
        {'    ✗ '}
        {inert(line)}
      </Text>
    ));
  };
  const kept = new Set(form.targets ?? resolved?.map((t) => t.instanceId) ?? []);

  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Text bold wrap="truncate-end">
        Launch {runbook.name} v{runbook.version}{' '}
        <Text color={tone('dim')}>— {fit(inert(runbook.description), width - runbook.name.length - 16)}</Text>
      </Text>
      {opened.unreadable.length > 0 ? (
        <Text color={tone('bad')}>parameters this client cannot read: {opened.unreadable.join(', ')}</Text>
      ) : null}
      {form.params.map((field, i) => {
        const choices = choicesOf(field.spec);
        return (
          <Box key={field.name} flexDirection="column">
            <Text wrap="truncate-end">
              {label(field.name, i)}{' '}
              {choices ? (
                choices.map((c) => (
                  <Text key={c} inverse={c === field.text} bold={c === field.text}>
                    {c === field.text ? `(•) ${c}` : `( ) ${c}`}{' '}
                  </Text>
                ))
              ) : (
                <Text>
                  {inert(field.text)}
                  {focus === i ? '▏' : ''}
                </Text>
              )}
              <Text color={tone('dim')}>
                {' '}
                {fit(
                  inert([fieldHint(field.spec), field.spec.description].filter(Boolean).join(' · ')),
                  Math.max(0, width - 40),
                )}
              </Text>
            </Text>
            {showProblem(field.name, i)}
          </Box>
        );
      })}
      <Box flexDirection="column">
        <Text wrap="truncate-end">
          {label('targets', TARGETS)}{' '}
          {resolving === 'busy' ? (
            <Text color={tone('dim')}>resolving…</Text>
          ) : resolved ? (
            resolved.map((t, i) => (
              <Text key={t.instanceId} underline={focus === TARGETS && i === targetCursor}>
                {kept.has(t.instanceId) ? '[x]' : '[ ]'} {inert(t.name ?? t.instanceId)}{' '}
              </Text>
            ))
          ) : !paramsValid ? (
            <Text color={tone('dim')}>resolved once the parameters are valid</Text>
          ) : null}
        </Text>
        {resolving && resolving !== 'busy' ? (
          <Text color={tone('bad')} wrap="truncate-end">
            {'    ✗ '}
            {resolving.message}
          </Text>
        ) : null}
        {focus === TARGETS && resolved ? (
          <Text color={tone('dim')}>{'    '}←→ move, Space keep/drop; all are kept unless you drop some</Text>
        ) : null}
        {showProblem('targets', TARGETS)}
      </Box>
      <Box flexDirection="column">
        <Text wrap="truncate-end">
          {label('reason', REASON)} {inert(form.reason)}
          {focus === REASON ? '▏' : ''}
          {form.reason === '' && focus !== REASON ? <Text color={tone('dim')}>why is this run needed?</Text> : null}
        </Text>
        {showProblem('reason', REASON)}
      </Box>
      <Text>
        {label('Review plan', SUBMIT)}{' '}
        {planning ? (
          <Text color={tone('dim')}>planning…</Text>
        ) : Object.keys(problems).length ? (
          <Text color={tone('dim')}>{Object.keys(problems).length} field(s) to fix first</Text>
        ) : (
          <Text color={tone('good')}>ready: Enter plans it (nothing starts yet)</Text>
        )}
      </Text>
      <Notice problem={problem} width={width} />
    </Box>
  );
}

function touched(form: FormState, name: string, opened: FormState): boolean {
  if (name === 'reason') return form.reason !== '';
  if (name === 'targets') return form.targets !== undefined;
  return form.params.find((p) => p.name === name)?.text !== opened.params.find((p) => p.name === name)?.text;
}
