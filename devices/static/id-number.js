// Resident ID numbers (居民身份证号码, GB 11643-1999) as the kiosk checks them for instant feedback:
// the same rules as the server's (hall/identity.py), which decides.

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = "10X98765432";

export const PROBLEMS = {
  length: ["身份证号码为 18 位", "An ID number has 18 characters"],
  shape: ["前 17 位是数字，最后一位是数字或 X", "17 digits, then a digit or X"],
  checksum: ["号码校验不符，请核对后重新输入", "That number does not check out: please check it"],
  birth: ["号码中的出生日期无效", "The birth date in that number is not valid"],
};

/** What is wrong with `text` as an ID number (a key of PROBLEMS), or null if it is valid. */
export function idProblem(text, today = new Date()) {
  const number = text.trim().toUpperCase();
  if (number.length !== 18) return "length";
  if (!/^[0-9]{17}[0-9X]$/.test(number)) return "shape";
  let total = 0;
  for (let i = 0; i < 17; i += 1) total += Number(number[i]) * WEIGHTS[i];
  if (CHECK[total % 11] !== number[17]) return "checksum";
  const [year, month, day] = [number.slice(6, 10), number.slice(10, 12), number.slice(12, 14)].map(Number);
  const born = new Date(Date.UTC(year, month - 1, day));
  const real = born.getUTCFullYear() === year && born.getUTCMonth() === month - 1 && born.getUTCDate() === day;
  if (!real || year < 1890 || born > today) return "birth";
  return null;
}

/** The number as a screen may show it: 1101**********002X. */
export function maskId(number) {
  return number.slice(0, 4) + "*".repeat(Math.max(0, number.length - 8)) + number.slice(-4);
}

/** Only what an ID number can hold, upper case, at most 18 characters. */
export function cleanId(text) {
  return text.toUpperCase().replace(/[^0-9X]/g, "").slice(0, 18);
}
