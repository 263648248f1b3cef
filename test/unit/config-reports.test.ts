import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config.ts';

/** The reports' working hours and time zone: defaults, a custom setting, and refusals that say what to write. */
describe('report settings', () => {
  test('default: Monday to Friday, 08:00 to 18:00 UTC', () => {
    expect(loadConfig({}).reports).toEqual({
      workingHours: { days: [1, 2, 3, 4, 5], startMinute: 480, endMinute: 1080 },
      timeZone: 'UTC',
    });
  });

  test('configured hours and zone', () => {
    const config = loadConfig({
      MECHANIC_REPORT_WORKING_HOURS: 'Sun-Thu 07:30-16:00',
      MECHANIC_REPORT_TIME_ZONE: 'Asia/Jerusalem',
    });
    expect(config.reports).toEqual({
      workingHours: { days: [0, 1, 2, 3, 4], startMinute: 450, endMinute: 960 },
      timeZone: 'Asia/Jerusalem',
    });
  });

  test('hours that cannot be read are refused with what to write', () => {
    expect(() => loadConfig({ MECHANIC_REPORT_WORKING_HOURS: '9 to 5' })).toThrow(
      'could not read MECHANIC_REPORT_WORKING_HOURS "9 to 5"; write working days and hours like "Mon-Fri 08:00-18:00" or "Mon,Wed,Sat 09:30-17:00" (start before end)',
    );
  });

  test('an unknown time zone is refused with what to write', () => {
    expect(() => loadConfig({ MECHANIC_REPORT_TIME_ZONE: 'Mars/Olympus' })).toThrow(
      'MECHANIC_REPORT_TIME_ZONE "Mars/Olympus" is not a time zone; write an IANA name such as UTC or Europe/Berlin',
    );
  });
});
