// SPDX-License-Identifier: GPL-2.0-only OR BSD-3-Clause
/*
 * dmaengine driver for the dmalab DMA controller (PCI 1234:DA1A), the
 * emulated device of the dmalab VMM; docs/device-spec.md is its contract.
 *
 * This file: the PCI function. Probe enables the function (pcim), maps
 * BAR0, checks the ID register, reads CAPS and MAX_XFER, resets the device
 * (GCTRL.RESET), sets up every channel (dmalab_dma_chan.c), asks for
 * channels + 1 MSI-X vectors (entry c: channel c's completions, entry
 * `channels`: the error vector) or else the one MSI message of the
 * fallback, and registers one dma_device with a channel per hardware
 * channel: DMA_MEMCPY, and DMA_MEMSET when CAPS has FILL.
 *
 * Remove, in the order the hardware needs: stop every channel (reset, and
 * `stopping` keeps anything new off the hardware) -> free_irq (which
 * synchronizes with running handlers) -> watchdog timers and tasklets
 * killed -> outstanding transactions end DMA_TRANS_ABORTED -> the
 * dma_device is unregistered; coherent memory and vectors go with devres,
 * struct dmalab_dev with the dma_device's release.
 *
 * The counters for the in-guest harness (dmalab_dma.h) are driver-wide;
 * a list of bound devices says how many controllers they cover.
 */
#include <linux/bitfield.h>
#include <linux/dma-mapping.h>
#include <linux/dmaengine.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "dmalab_dma_priv.h"

static bool force_msi;
module_param(force_msi, bool, 0444);
MODULE_PARM_DESC(force_msi, "Use the one-message MSI fallback even when MSI-X works (default 0)");

static LIST_HEAD(dmalab_devices);
static DEFINE_SPINLOCK(dmalab_devices_lock);
static struct pci_driver dmalab_pci_driver;

const char * const dmalab_dma_counter_names[DMALAB_DMA_NR_COUNTERS] = {
	[DMALAB_DMA_INTERRUPTS]			= "interrupts",
	[DMALAB_DMA_COMPLETIONS]		= "completions",
	[DMALAB_DMA_RETRIES]			= "retries",
	[DMALAB_DMA_RESETS]			= "resets",
	[DMALAB_DMA_WATCHDOG_RECOVERIES]	= "watchdog_recoveries",
	[DMALAB_DMA_ERRORS_REPORTED]		= "errors_reported",
};
EXPORT_SYMBOL_GPL(dmalab_dma_counter_names);

/* Driver-wide, so a controller unbound and bound again keeps its history. */
atomic64_t dmalab_stats[DMALAB_DMA_NR_COUNTERS];

int dmalab_dma_read_counters(u64 out[DMALAB_DMA_NR_COUNTERS])
{
	struct dmalab_dev *dd;
	unsigned long flags;
	unsigned int i;
	int n = 0;

	for (i = 0; i < DMALAB_DMA_NR_COUNTERS; i++)
		out[i] = atomic64_read(&dmalab_stats[i]);
	spin_lock_irqsave(&dmalab_devices_lock, flags);
	list_for_each_entry(dd, &dmalab_devices, node)
		n++;
	spin_unlock_irqrestore(&dmalab_devices_lock, flags);
	return n;
}
EXPORT_SYMBOL_GPL(dmalab_dma_read_counters);

bool dmalab_dma_chan_filter(struct dma_chan *chan, void *param)
{
	return chan->device->dev->driver == &dmalab_pci_driver.driver;
}

/* MSI-X with a vector per channel plus the error vector, else one MSI. */
static int dmalab_alloc_vectors(struct dmalab_dev *dd)
{
	unsigned int nvec = dd->channels + 1;
	int ret;

	ret = force_msi ? -ENOSPC :
		pci_alloc_irq_vectors(dd->pdev, nvec, nvec, PCI_IRQ_MSIX);
	if (ret > 0) {
		dd->msix = true;
		dd->nvec = nvec;
		return 0;
	}
	ret = pci_alloc_irq_vectors(dd->pdev, 1, 1, PCI_IRQ_MSI);
	if (ret < 0)
		return ret;
	dd->nvec = 1;
	return 0;
}

static void *dmalab_vector_data(struct dmalab_dev *dd, unsigned int i)
{
	return dd->msix && i < dd->channels ? (void *)&dd->chan[i] : (void *)dd;
}

static irq_handler_t dmalab_vector_handler(struct dmalab_dev *dd, unsigned int i)
{
	if (!dd->msix)
		return dmalab_msi_isr;
	return i < dd->channels ? dmalab_chan_isr : dmalab_error_isr;
}

static void dmalab_free_irqs(struct dmalab_dev *dd, unsigned int n)
{
	while (n--)
		free_irq(pci_irq_vector(dd->pdev, n), dmalab_vector_data(dd, n));
}

static int dmalab_request_irqs(struct dmalab_dev *dd)
{
	unsigned int i;
	int ret;

	for (i = 0; i < dd->nvec; i++) {
		ret = request_irq(pci_irq_vector(dd->pdev, i),
				  dmalab_vector_handler(dd, i), 0, KBUILD_MODNAME,
				  dmalab_vector_data(dd, i));
		if (ret)
			goto err_free_requested;
	}
	return 0;

err_free_requested:
	dmalab_free_irqs(dd, i);
	return ret;
}

static void dmalab_release(struct dma_device *dma)
{
	struct dmalab_dev *dd = container_of(dma, struct dmalab_dev, dma);

	put_device(dma->dev);
	kfree(dd);
}

/* ID, CAPS, MAX_XFER; the ring size is the smaller of ours and CAPS'. */
static int dmalab_read_caps(struct dmalab_dev *dd)
{
	u32 id = readl(dd->regs + DMALAB_REG_ID);
	unsigned int log2;

	if (id != DMALAB_ID_VALUE) {
		pci_err(dd->pdev, "ID register reads %#x, not a dmalab controller\n", id);
		return -ENODEV;
	}
	dd->caps = readl(dd->regs + DMALAB_REG_CAPS);
	dd->channels = min_t(unsigned int, FIELD_GET(DMALAB_CAPS_CHANNELS, dd->caps),
			     DMALAB_MAX_CHANNELS);
	log2 = min_t(unsigned int, FIELD_GET(DMALAB_CAPS_RING_LOG2, dd->caps),
		     ilog2(DMALAB_RING_ENTRIES));
	dd->ring_entries = 1U << log2;
	dd->max_xfer = readl(dd->regs + DMALAB_REG_MAX_XFER);
	if (!dd->channels || dd->ring_entries < 2 || !dd->max_xfer) {
		pci_err(dd->pdev, "unusable CAPS %#x, MAX_XFER %u\n",
			dd->caps, dd->max_xfer);
		return -ENODEV;
	}
	return 0;
}

static int dmalab_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct dmalab_dev *dd;
	unsigned int i;
	int ret;

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ret = pcim_iomap_regions(pdev, BIT(0), KBUILD_MODNAME);
	if (ret)
		return ret;
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;

	dd = kzalloc(sizeof(*dd), GFP_KERNEL);
	if (!dd)
		return -ENOMEM;
	dd->pdev = pdev;
	dd->regs = pcim_iomap_table(pdev)[0];
	ret = dmalab_read_caps(dd);
	if (ret)
		goto err_free_dd;

	pci_set_master(pdev);
	writel(DMALAB_GCTRL_RESET, dd->regs + DMALAB_REG_GCTRL);
	ret = dmalab_alloc_vectors(dd);
	if (ret)
		goto err_free_dd;

	INIT_LIST_HEAD(&dd->dma.channels);
	for (i = 0; i < dd->channels; i++) {
		ret = dmalab_chan_setup(dd, i);
		if (ret)
			goto err_reset_device;
	}
	ret = dmalab_request_irqs(dd);
	if (ret)
		goto err_reset_device;

	dmalab_dma_ops_init(dd);
	dd->dma.dev = get_device(&pdev->dev);
	dd->dma.device_release = dmalab_release;
	ret = dma_async_device_register(&dd->dma);
	if (ret)
		goto err_free_irqs;

	pci_set_drvdata(pdev, dd);
	spin_lock_irq(&dmalab_devices_lock);
	list_add_tail(&dd->node, &dmalab_devices);
	spin_unlock_irq(&dmalab_devices_lock);
	pci_info(pdev, "%u channels, %s, ring %u, max transfer %u%s\n",
		 dd->channels, dd->msix ? "MSI-X" : "MSI", dd->ring_entries,
		 dd->max_xfer, dd->caps & DMALAB_CAPS_FILL ? ", fill" : "");
	return 0;

err_free_irqs:
	put_device(&pdev->dev);
	dmalab_free_irqs(dd, dd->nvec);
err_reset_device:
	writel(DMALAB_GCTRL_RESET, dd->regs + DMALAB_REG_GCTRL);
	for (i = 0; i < dd->channels; i++)
		tasklet_kill(&dd->chan[i].task);
err_free_dd:
	kfree(dd);
	return ret;
}

static void dmalab_remove(struct pci_dev *pdev)
{
	struct dmalab_dev *dd = pci_get_drvdata(pdev);
	unsigned int i;

	spin_lock_irq(&dmalab_devices_lock);
	list_del(&dd->node);
	spin_unlock_irq(&dmalab_devices_lock);

	for (i = 0; i < dd->channels; i++)
		dmalab_chan_stop_hw(&dd->chan[i]);
	writel(DMALAB_GCTRL_RESET, dd->regs + DMALAB_REG_GCTRL);
	dmalab_free_irqs(dd, dd->nvec);
	for (i = 0; i < dd->channels; i++)
		dmalab_chan_quiesce(&dd->chan[i]);
	for (i = 0; i < dd->channels; i++)
		dmalab_chan_abort_all(&dd->chan[i]);
	/* May free dd (dmalab_release) when no client holds a channel. */
	dma_async_device_unregister(&dd->dma);
}

static const struct pci_device_id dmalab_pci_ids[] = {
	{ PCI_DEVICE(DMALAB_PCI_VENDOR, DMALAB_PCI_DEVICE) },
	{ }
};
MODULE_DEVICE_TABLE(pci, dmalab_pci_ids);

static struct pci_driver dmalab_pci_driver = {
	.name		= KBUILD_MODNAME,
	.id_table	= dmalab_pci_ids,
	.probe		= dmalab_probe,
	.remove		= dmalab_remove,
};
module_pci_driver(dmalab_pci_driver);

MODULE_DESCRIPTION("dmaengine driver for the dmalab DMA controller");
MODULE_LICENSE("Dual BSD/GPL");
