import { describe, expect, test } from 'vitest';
import { placeholderUses } from '../../src/core/shell-context.ts';

const contextOf = (script: string) => placeholderUses(script).map((u) => u.unsafe ?? 'word');

describe('where a placeholder stands', () => {
  test.each([
    ['echo {{ v }}', ['word']],
    ['echo pre-{{ v }}-post', ['word']],
    ['x=$(cat {{ v }})', ['word']],
    ['echo "$(cat {{ v }})"', ['word']],
    ['echo "`cat {{ v }}`"', ['word']],
    ['echo `cat {{ v }}`', ['word']],
    ['echo "v={{ v }}"', ['double quotes']],
    ["echo 'v={{ v }}'", ['single quotes']],
    ['echo "a \\" {{ v }}"', ['double quotes']],
    ['echo \\"{{ v }}', ['word']],
    ['echo ${x:-{{ v }}}', ['a ${…} expansion']],
    ['echo $(( {{ v }} + 1 ))', ['arithmetic $((…))']],
    ['cat <<EOF\n{{ v }}\nEOF\necho {{ w }}', ['a heredoc', 'word']],
    ["cat <<'EOF'\nx {{ v }}\nEOF", ['a heredoc']],
    ['cat <<-EOF\n\t{{ v }}\n\tEOF\necho {{ w }}', ['a heredoc', 'word']],
    ["echo 'it''s' {{ v }}", ['word']],
    ['# note {{ v }}\necho {{ w }}', ['word']],
    ['echo a#{{ v }}', ['word']],
    ['echo "$HOME" {{ v }} "$PATH"', ['word']],
    ['case {{ v }} in a) echo "{{ w }}";; esac', ['word', 'double quotes']],
  ])('%j', (script, expected) => {
    expect(contextOf(script)).toEqual(expected);
  });

  test('a comment hides its placeholders', () => {
    expect(placeholderUses('# {{ v }}')).toEqual([]);
  });
});
