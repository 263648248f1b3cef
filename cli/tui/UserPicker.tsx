import { Box, Text, useApp } from 'ink';
import { useKeys } from './keyboard.tsx';
import { tone } from './theme.ts';
import { useLatest } from './use-latest.ts';
import { inert } from './text.ts';

export interface DemoUser {
  readonly id: string;
  readonly displayName: string;
  readonly roles: readonly string[];
}

/** The embedded stack's demo users, to sign in as one. */
export function UserPicker({
  users,
  onPick,
}: {
  readonly users: readonly DemoUser[];
  readonly onPick: (id: string) => void;
}) {
  const [at, getAt, setAt] = useLatest(0);
  const { exit } = useApp();
  useKeys((input, key) => {
    if (key.upArrow || input === 'k') setAt((a) => Math.max(0, a - 1));
    else if (key.downArrow || input === 'j') setAt((a) => Math.min(users.length - 1, a + 1));
    else if (key.return && users[getAt()]) onPick(users[getAt()]!.id);
    else if (input === 'q' || key.escape) exit();
  });
  return (
    <Box flexDirection="column" borderStyle="round" paddingX={1}>
      <Text bold>Sign in to mechanic as a demo user</Text>
      {users.map((u, i) => (
        <Text key={u.id} inverse={i === at}>
          {i === at ? '›' : ' '} {inert(u.id).padEnd(8)} {inert(u.displayName).padEnd(20)}{' '}
          <Text color={tone('dim')}>{u.roles.join(', ')}</Text>
        </Text>
      ))}
      <Text color={tone('dim')}>↑↓ choose · Enter sign in · q quit</Text>
    </Box>
  );
}
