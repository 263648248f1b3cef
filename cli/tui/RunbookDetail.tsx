import { Box, Text } from 'ink';
import { readParameter } from './form-model.ts';
import { RISK_TONE, approvalGroupsOf, ownersOf, riskOf, riskText } from './risk.ts';
import { tone } from './theme.ts';
import { fit, inert } from './text.ts';
import type { RunbookInfo } from './types.ts';
import { LOCKED, launchRefusal } from './launch.ts';

/** A runbook's parameters, targets and steps, as the catalog's detail pane shows them. */
export function RunbookDetail({ runbook, width }: { readonly runbook: RunbookInfo; readonly width: number }) {
  type Scope = Exclude<RunbookInfo['targets'], { fromParameter: string }>;
  const scope = (t: Scope) =>
    'instanceIds' in t
      ? `instances ${t.instanceIds.join(', ')}`
      : 'names' in t
        ? `names ${t.names.join(', ')}`
        : `tags ${Object.entries(t.tags)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ')}`;
  const targets =
    'fromParameter' in runbook.targets
      ? `from parameter ${runbook.targets.fromParameter}` +
        (runbook.targets.within ? `, within ${scope(runbook.targets.within)}` : ', any instance the role reaches')
      : scope(runbook.targets);
  const params = Object.entries(runbook.parameters);
  const risk = riskOf(runbook);
  const owners = ownersOf(runbook);
  const groups = approvalGroupsOf(runbook);
  const refusal = launchRefusal(runbook);
  return (
    // It keeps its natural height: where the screen is shorter, the pane around it cuts it at the
    // bottom. Shrunk instead, its lines would be laid over one another.
    <Box flexDirection="column" flexShrink={0} width={width} borderStyle="single" paddingX={1}>
      <Text bold wrap="truncate-end">
        {runbook.name} v{runbook.version} <Text color={tone('dim')}>digest {runbook.digest.slice(0, 12)}</Text>
      </Text>
      {refusal !== undefined ? (
        <Text color={tone('warn')} wrap="wrap">
          {LOCKED} You may not launch it: {inert(refusal)}
        </Text>
      ) : null}
      <Text wrap="wrap">{inert(runbook.description)}</Text>
      <Text wrap="truncate-end">
        <Text bold {...(risk ? { color: tone(RISK_TONE[risk]) } : {})}>
          {riskText(risk)}
        </Text>{' '}
        · owners {owners === undefined ? 'unknown' : owners.length ? inert(owners.join(', ')) : 'none named'}
      </Text>
      <Text bold>Parameters</Text>
      {params.length === 0 ? <Text color={tone('dim')}> none</Text> : null}
      {params.map(([name, raw]) => {
        const spec = readParameter(raw);
        const rule = spec ? describeSpec(spec) : 'a parameter this client cannot read';
        return (
          <Text key={name} wrap="truncate-end">
            {'  '}
            {name}: {fit(inert(rule), width - name.length - 8)}
          </Text>
        );
      })}
      <Text wrap="truncate-end">
        <Text bold>Targets</Text> {inert(targets)}
      </Text>
      <Text wrap="wrap">
        <Text bold>Approval</Text> {runbook.approval.required} approver(s), within{' '}
        {runbook.approval.expiresAfterMinutes} min
        {groups?.length
          ? ` · from ${risk === 'high' ? 'two different groups of' : 'the groups'} ${inert(groups.join(', '))}`
          : ''}
      </Text>
      <Text bold>Steps</Text>
      {runbook.steps.map((s, i) => (
        <Text key={`m${i}`} wrap="truncate-end">
          {'  '}
          {i + 1}. {inert(s.name)} <Text color={tone('dim')}>(≤ {s.timeoutSeconds}s)</Text>
        </Text>
      ))}
      {runbook.onFailure.length > 0 ? (
        <Text wrap="truncate-end" color={tone('dim')}>
          {'  '}on failure: {runbook.onFailure.map((s) => inert(s.name)).join(', ')}
        </Text>
      ) : null}
    </Box>
  );
}

function describeSpec(spec: NonNullable<ReturnType<typeof readParameter>>): string {
  const def = spec.default !== undefined ? ` = ${JSON.stringify(spec.default)}` : ' (required)';
  switch (spec.type) {
    case 'string':
      return `string${spec.pattern ? ` matching ${spec.pattern}` : ''}${def}`;
    case 'integer':
      return `integer${spec.min !== undefined ? ` ≥ ${spec.min}` : ''}${spec.max !== undefined ? ` ≤ ${spec.max}` : ''}${def}`;
    case 'boolean':
      return `true/false${def}`;
    case 'enum':
      return `one of ${spec.values.join(', ')}${def}`;
    case 'list':
      return `list of ${spec.minItems}–${spec.maxItems} ${spec.items.type} items${def}`;
    case 'secret':
      return `secret reference (SSM Parameter Store name, read on the instance)${def}`;
  }
}
