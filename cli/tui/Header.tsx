import { Box, Text } from 'ink';
import type { Link } from './follow.ts';
import { tone } from './theme.ts';
import { fit, inert } from './text.ts';

export interface HeaderProps {
  readonly user: { readonly id: string; readonly roles: readonly string[] };
  readonly title: string;
  readonly link: Link;
  readonly width: number;
  readonly inboxCount?: number;
}

/** Who is signed in, where they are, and whether the live stream is connected. */
export function Header({ user, title, link, width, inboxCount }: HeaderProps) {
  const live =
    link.state === 'live'
      ? { text: '● live', t: tone('good') }
      : link.state === 'connecting'
        ? { text: '○ connecting', t: tone('warn') }
        : link.state === 'lost'
          ? { text: '○ reconnecting', t: tone('warn') }
          : { text: '✗ offline', t: tone('bad') };
  const left = `mechanic · ${inert(user.id)} (${user.roles.join(', ')}) · ${title}${inboxCount ? ` · inbox ${inboxCount}` : ''}`;
  return (
    <Box height={1} width={width} justifyContent="space-between" overflow="hidden">
      <Text bold wrap="truncate-end">
        {fit(left, Math.max(10, width - live.text.length - 1))}
      </Text>
      <Text color={live.t}>{live.text}</Text>
    </Box>
  );
}
