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
  // Runs waiting for my approval sit beside the link, so a narrow terminal cuts the title first.
  const inbox = inboxCount ? `inbox ${inboxCount} · ` : '';
  const left = `mechanic · ${inert(user.id)} (${user.roles.join(', ')}) · ${title}`;
  return (
    <Box height={1} width={width} justifyContent="space-between" overflow="hidden">
      <Text bold wrap="truncate-end">
        {fit(left, Math.max(10, width - inbox.length - live.text.length - 1))}
      </Text>
      <Text>
        {inbox ? <Text color={tone('warn')}>{inbox}</Text> : null}
        <Text color={live.t}>{live.text}</Text>
      </Text>
    </Box>
  );
}
