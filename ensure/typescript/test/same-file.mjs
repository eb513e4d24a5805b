// Fails when the checked-in generated types differ from what the OpenAPI
// document generates now: the client cannot drift from the document.
import { readFileSync } from "node:fs";

const [checkedIn, fresh] = process.argv.slice(2);
if (readFileSync(checkedIn, "utf8") !== readFileSync(fresh, "utf8")) {
  console.error(`${checkedIn} is not what starter/service/openapi.yaml generates: run npm run generate`);
  process.exit(1);
}
