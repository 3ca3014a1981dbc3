/**
 * `deno task kernel`: install Deno's Jupyter kernelspec when missing and
 * print how to use quantlab from any folder of notebooks.
 *
 * @module
 */
import { ensureKernel, findJupyter } from "./notebook_runner.ts";

const jupyter = await findJupyter();
if (!jupyter) {
  console.error(
    "Jupyter is not installed. On Debian/Ubuntu: apt-get install jupyter-nbconvert python3-nbclient jupyter-client " +
      "(or pip install jupyterlab), then run `deno task kernel` again.",
  );
  Deno.exit(2);
}
const installed = await ensureKernel(jupyter);
console.log(installed ? 'Installed the Deno kernelspec ("deno").' : 'The Deno kernelspec ("deno") is installed.');
const modUrl = new URL("../mod.ts", import.meta.url);
console.log(`
Use quantlab from any folder of notebooks (kernel: Deno), in one of two ways:

1. A deno.json beside the notebooks mapping "quantlab" to this checkout (or to a URL):

   {
     "imports": { "quantlab": "${modUrl.href}" }
   }

   then, in a cell:   import { quantizer, uniformQuantization } from "quantlab";

2. A plain import by path or URL, no deno.json needed:

   import { quantizer } from "${modUrl.href}";

Start Jupyter with: jupyter lab   (or jupyter notebook), and pick the "Deno" kernel.`);
