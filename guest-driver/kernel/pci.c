// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * conf1 access and the boot-time scan of bus 0.
 *
 * Each config access is two exits (address write to 0xCF8, data access to
 * 0xCFC), ~22 us here, so the scan reads as little as it can: the ID dword
 * of every slot (absent: 0xFFFFFFFF), then for a present function only
 * the class/revision and header-type dwords; functions 1-7 only when
 * function 0's header type has the multifunction bit. Bus 0 only: the VMM
 * puts everything there. The results stay in pci_functions[] for drivers;
 * pci_print formats them later, after READY (formatting is costly here).
 */
#include "kernel.h"
#include "pci.h"
#include "platform.h"

#define PCI_CONF_ADDR 0xcf8
#define PCI_CONF_DATA 0xcfc
#define PCI_ENABLE 0x80000000u
#define PCI_REG_ID 0x00
#define PCI_REG_CLASS 0x08
#define PCI_REG_HEADER 0x0c
#define PCI_HEADER_MULTIFUNCTION 0x80

struct pci_function pci_functions[PCI_MAX_FUNCTIONS];
unsigned int pci_function_count;

static uint32_t conf_addr(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t reg)
{
	return PCI_ENABLE | (uint32_t)bus << 16 | (uint32_t)(dev & 31) << 11 |
	       (uint32_t)(fn & 7) << 8 | (reg & 0xfc);
}

uint32_t pci_conf_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t reg)
{
	outl(PCI_CONF_ADDR, conf_addr(bus, dev, fn, reg));
	return inl(PCI_CONF_DATA);
}

void pci_conf_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t reg,
		      uint32_t v)
{
	outl(PCI_CONF_ADDR, conf_addr(bus, dev, fn, reg));
	outl(PCI_CONF_DATA, v);
}

/* Record function fn of dev, whose ID dword is id; returns its header type. */
static int record(uint8_t dev, uint8_t fn, uint32_t id)
{
	struct pci_function *p;

	if (pci_function_count == PCI_MAX_FUNCTIONS)
		return 0;
	p = &pci_functions[pci_function_count++];
	p->dev = dev;
	p->fn = fn;
	p->vendor = (uint16_t)id;
	p->device = (uint16_t)(id >> 16);
	p->class_rev = pci_conf_read32(0, dev, fn, PCI_REG_CLASS);
	p->header_type = (uint8_t)(pci_conf_read32(0, dev, fn,
						   PCI_REG_HEADER) >> 16);
	return p->header_type;
}

void pci_print(void)
{
	const struct pci_function *p;

	for (p = pci_functions; p < pci_functions + pci_function_count; p++)
		kinfo("pci %02x:%02x.%u %04x:%04x class %06x\n", p->bus, p->dev,
		      p->fn, p->vendor, p->device, p->class_rev >> 8);
}

/* The absent-slot path is the hot one (most of 32): two port accesses and
 * a compare, ~8 instructions, nothing else. */
unsigned int pci_scan(void)
{
	uint32_t addr, id;
	uint8_t dev, fn;

	for (dev = 0, addr = PCI_ENABLE; dev < 32; dev++, addr += 1u << 11) {
		outl(PCI_CONF_ADDR, addr);
		id = inl(PCI_CONF_DATA);
		if ((uint16_t)id == 0xffff)
			continue;
		if (!(record(dev, 0, id) & PCI_HEADER_MULTIFUNCTION))
			continue;
		for (fn = 1; fn < 8; fn++) {
			id = pci_conf_read32(0, dev, fn, PCI_REG_ID);
			if ((uint16_t)id != 0xffff)
				record(dev, fn, id);
		}
	}
	return pci_function_count;
}
