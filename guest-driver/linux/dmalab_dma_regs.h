/* SPDX-License-Identifier: GPL-2.0-only OR BSD-3-Clause */
/*
 * Register map, descriptor and completion-record layout of the dmalab DMA
 * controller, as docs/device-spec.md defines them (sections in brackets).
 */
#ifndef DMALAB_DMA_REGS_H
#define DMALAB_DMA_REGS_H

#include <linux/bits.h>
#include <linux/types.h>

#define DMALAB_PCI_VENDOR		0x1234
#define DMALAB_PCI_DEVICE		0xda1a

/* BAR0 global block [3.1] */
#define DMALAB_REG_ID			0x000
#define DMALAB_ID_VALUE			0x4c414d44	/* "DMAL" */
#define DMALAB_REG_VERSION		0x004
#define DMALAB_REG_CAPS			0x008
#define DMALAB_CAPS_CHANNELS		GENMASK(7, 0)
#define DMALAB_CAPS_RING_LOG2		GENMASK(15, 8)
#define DMALAB_CAPS_FENCE		BIT(16)
#define DMALAB_CAPS_SHADOW		BIT(17)
#define DMALAB_CAPS_FILL		BIT(18)
#define DMALAB_REG_MAX_XFER		0x00c
#define DMALAB_REG_GCTRL		0x010
#define DMALAB_GCTRL_RESET		BIT(0)
#define DMALAB_REG_INT_STATUS		0x018
#define DMALAB_INT_ERROR		BIT(31)
#define DMALAB_REG_INT_MASK		0x01c
#define DMALAB_REG_TRACE_MARKER		0x028
#define DMALAB_MARKER(kind, chan, tag)	(((kind) << 24) | ((chan) << 16) | \
					 ((tag) & 0xffff))
#define DMALAB_MARK_ISR			1
#define DMALAB_MARK_TASKLET		2
#define DMALAB_MARK_COMPLETE		3
#define DMALAB_MARK_WATCHDOG		4

/* Channel block c at 0x100 + 0x80 * c [3.2] */
#define DMALAB_CHAN_REGS(c)		(0x100 + 0x80 * (c))
#define DMALAB_CH_RING_BASE		0x00	/* 64-bit */
#define DMALAB_CH_RING_SIZE		0x08
#define DMALAB_CH_HEAD			0x0c
#define DMALAB_CH_TAIL			0x10
#define DMALAB_CH_CTRL			0x14
#define DMALAB_CTRL_ENABLE		BIT(0)
#define DMALAB_CTRL_ABORT		BIT(1)
#define DMALAB_CTRL_RESET		BIT(2)
#define DMALAB_CH_STATUS		0x18
#define DMALAB_STATUS_STATE		GENMASK(1, 0)
#define DMALAB_STATE_IDLE		0
#define DMALAB_STATE_BUSY		1
#define DMALAB_STATE_HALTED		2
#define DMALAB_STATE_ERROR		3
#define DMALAB_STATUS_COMP_FULL		BIT(4)
#define DMALAB_CH_ERROR_CODE		0x1c
#define DMALAB_CH_COMP_BASE		0x20	/* 64-bit */
#define DMALAB_CH_COMP_HEAD		0x28
#define DMALAB_CH_COMP_TAIL		0x2c
#define DMALAB_CH_COALESCE_COUNT	0x30
#define DMALAB_CH_COALESCE_TIME		0x34
#define DMALAB_CH_SHADOW_BASE		0x38	/* 64-bit */
#define DMALAB_CH_COMPLETED		0x40

/* A removed device reads all ones, from every register [8]. */
#define DMALAB_ALL_ONES			0xffffffffu

/* Channel error codes, ERROR_CODE in state ERROR [5.2] */
#define DMALAB_ERR_DMA_FATAL		7
#define DMALAB_ERR_HALT			8

/* Descriptor [4.1] */
#define DMALAB_OP_COPY			0
#define DMALAB_OP_FILL			1
#define DMALAB_DESC_IOC			BIT(0)
#define DMALAB_DESC_FENCE		BIT(1)

struct dmalab_hw_desc {
	__le64 src;		/* COPY: source address; FILL: 8-byte pattern */
	__le64 dst;
	__le32 len;		/* 1 ... MAX_XFER */
	u8 op;
	u8 flags;
	__le16 reserved;
	__le64 cookie;		/* returned unchanged in the completion */
};

/* Completion record [4.2] and its status [5.1] */
#define DMALAB_COMP_PHASE		BIT(0)

enum dmalab_comp_status {
	DMALAB_ST_OK		= 0,
	DMALAB_ST_SHORT		= 1,
	DMALAB_ST_ERR_SRC	= 2,
	DMALAB_ST_ERR_DST	= 3,
	DMALAB_ST_ERR_LEN	= 4,
	DMALAB_ST_ERR_OP	= 5,
	DMALAB_ST_ERR_DMA	= 6,
	DMALAB_ST_ABORTED	= 7,
	DMALAB_ST_ERR_FETCH	= 8,
	DMALAB_ST_ERR_HALTED	= 9,
};

struct dmalab_hw_comp {
	__le64 cookie;		/* 0 after a fetch error */
	__le32 bytes_done;
	__le16 status;
	u8 flags;		/* DMALAB_COMP_PHASE */
	u8 channel;
	__le64 timestamp;	/* device cycle of the write-back */
	__le32 seq;
	__le16 index;
	__le16 reserved;
};

/* Tail shadow [4.3]: written before the doorbell. */
struct dmalab_hw_shadow {
	__le32 tail;
	__le32 comp_head;
};

#endif
